// Package watermark is abseal's A/B forensic watermark: keyed patterns that
// segment variants A and B carry with opposite signs, the embedding into
// 8-bit luma planes, the payload code that turns a session's wmid into the
// sequence of A/B choices, and the detector that reads it back. It works on
// plain planes and bits; it does not import FFmpeg.
//
// The detector registers a suspect with the reference before it reads the
// mark, because pirates re-frame what they leak: crops off-centre, bars,
// windows, mirrors, 9:16 phone crops, a camera filming a screen. The method
// (register.go, align.go) is a coarse search followed by gradient-based
// refinement on low-resolution luma, chosen over feature matching because
// it needs no feature detector, works at the scale the mark lives at (the
// reference is read at 160x90), tolerates blur, noise and re-encoding that
// destroy fine features, and stays pure Go:
//
//   - bars (letterbox, pillarbox) are found as edge rows and columns that
//     stay dark and flat, and left out;
//   - a coarse time offset comes from the pictures' brightness over time,
//     which re-framing changes little, and from the best match of the
//     suspect stretched over the reference;
//   - at that time, the reference's picture is searched over sizes (a
//     window of less than half the suspect up to a crop showing 60 %),
//     aspect, both orientations and every position, by normalized
//     correlation at 64x36;
//   - Gauss-Newton then fits a homography (rotation, perspective,
//     independent scales) with a luma gain and offset, coarse to fine,
//     with Huber weights so that logos, subtitles and overlays count
//     little;
//   - the time offset is found again under that geometry, and where the
//     picture cannot tell a zoom from a time shift or a pan from a crop,
//     the family of equally good (offset, geometry) pairs is walked and
//     the mark's strength, read quickly against a control, picks;
//   - the geometry is then followed segment by segment (a handheld camera
//     drifts, zooms and rolls; a re-frame pans with the action): each
//     segment's homography is refined on two of its frame pairs from the
//     previous segment's and from the whole leak's, and kept where it
//     matches the pictures better. The report gives it per segment.
//
// Registration looks only at the picture (the mean of the two variants),
// never at the mark, so searching over geometries and times does not
// multiply the chances of a false identification; only the alignments
// that are decoded do.
//
// Each segment is then scored through the homography, after a fit of the
// suspect's luma as a quadratic function of the reference's (gamma,
// contrast, brightness). At most two alignments are decoded; the reported
// false-positive bound counts both.
package watermark
