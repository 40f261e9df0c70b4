// Package detect builds what the forensic detector compares a suspect
// with: the A and B references of an asset's rendition, decoded at the
// analysis size from a sealed asset (through sealed) or from a local
// asset directory, and the suspect's own pictures. It decodes with
// transcode (cgo); the scoring itself is watermark.Detect.
package detect
