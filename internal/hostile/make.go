package hostile

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// text is a maker writing s as the upload.
func text(s string) func(c Case, dir, path string) error {
	return func(c Case, dir, path string) error { return os.WriteFile(path, []byte(s), 0o600) }
}

// hugePNGs muxes n gray PNG pictures of size×size (one black picture,
// compressed once) into Matroska.
func hugePNGs(dir, path string, size, n int) error {
	img, err := blackPNG(size)
	if err != nil {
		return err
	}
	seq := filepath.Join(dir, "frames.png")
	if err := os.WriteFile(seq, bytes.Repeat(img, n), 0o600); err != nil {
		return err
	}
	defer os.Remove(seq)
	return ffmpeg("-f", "image2pipe", "-c:v", "png", "-framerate", "1", "-i", seq, "-c", "copy", path)
}

// blackPNG is a size×size 8-bit gray PNG, all black.
func blackPNG(size int) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		c := append([]byte(typ), data...)
		b.Write(c)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(c))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(size))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(size))
	ihdr[8] = 8 // bit depth; colour type 0 (gray), no interlace
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestCompression)
	if err != nil {
		return nil, err
	}
	row := make([]byte, size+1) // filter byte 0, then the pixels
	for range size {
		if _, err := zw.Write(row); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return b.Bytes(), nil
}

// shrinkMatroskaSize rewrites the PixelWidth and PixelHeight elements
// (2-byte values) of a Matroska file from size to w and h.
func shrinkMatroskaSize(path string, size, w, h int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, el := range []struct {
		id byte
		v  int
	}{{0xb0, w}, {0xba, h}} {
		old := []byte{el.id, 0x82, byte(size >> 8), byte(size)}
		i := bytes.Index(data, old)
		if i < 0 {
			return fmt.Errorf("no element %#x of value %d", el.id, size)
		}
		data[i+2], data[i+3] = byte(el.v>>8), byte(el.v)
	}
	return os.WriteFile(path, data, 0o600)
}

// resolutionSwitch is an MPEG-TS of 2 s at 320×240 followed by two
// pictures of 8000×8000 (a new SPS in the same stream).
func resolutionSwitch(dir, path string) error {
	small, big := filepath.Join(dir, "small.ts"), filepath.Join(dir, "big.ts")
	defer os.Remove(small)
	defer os.Remove(big)
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-f", "mpegts", small); err != nil {
		return err
	}
	if err := ffmpeg("-f", "lavfi", "-i", "color=gray:size=8000x8000:rate=25", "-frames:v", "2", "-c:v", "libx264", "-preset", "ultrafast",
		"-threads", "1", "-pix_fmt", "yuv420p", "-output_ts_offset", "2", "-f", "mpegts", big); err != nil {
		return err
	}
	return concatFiles(path, small, big)
}

// repeatedTS is n copies of one 2 s MPEG-TS: every copy restarts the
// timestamps, so the first and last say 2 s.
func repeatedTS(dir, path string, n int) error {
	seg := filepath.Join(dir, "seg.ts")
	defer os.Remove(seg)
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-f", "mpegts", seg); err != nil {
		return err
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = seg
	}
	return concatFiles(path, parts...)
}

func concatFiles(dst string, srcs ...string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		data, err := os.ReadFile(s)
		if err != nil {
			out.Close()
			return err
		}
		if _, err := out.Write(data); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// archive plants a video and writes an archive holding it (stored, not
// compressed) as the upload.
func archive(dir, path, secret string, write func(w io.Writer, name string, data []byte) error) error {
	p, err := plant(dir, secret)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f, secret, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeZip(w io.Writer, name string, data []byte) error {
	zw := zip.NewWriter(w)
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		return err
	}
	if _, err := fw.Write(data); err != nil {
		return err
	}
	return zw.Close()
}

func writeTar(w io.Writer, name string, data []byte) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data))}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	return tw.Close()
}

// bogusSTSZ is an MP4 whose sample size table claims 2^30 entries.
func bogusSTSZ(path string) error {
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-movflags", "+faststart", path); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(data, []byte("stsz"))
	if i < 0 || i+16 > len(data) {
		return errors.New("no stsz box")
	}
	// type, version and flags, sample size, then the entry count
	binary.BigEndian.PutUint32(data[i+12:], 1<<30)
	return os.WriteFile(path, data, 0o600)
}

// manyStreams is a Matroska file of one short video stream and n-1 audio
// streams.
func manyStreams(path string, n int) error {
	args := []string{"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1", "-f", "lavfi", "-i", "anullsrc=sample_rate=8000:channel_layout=mono",
		"-t", "1", "-map", "0:v"}
	for range n - 1 {
		args = append(args, "-map", "1:a")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", path)
	if err := ffmpeg(args...); err != nil {
		return fmt.Errorf("%d streams: %w", n, err)
	}
	return nil
}

// truncated is the first 40 % of an MP4 whose index is at the end.
func truncated(dir, path string) error {
	full := filepath.Join(dir, "full.mp4")
	defer os.Remove(full)
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", full); err != nil {
		return err
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data[:len(data)*4/10], 0o600)
}
