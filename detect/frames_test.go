package detect

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/abseal/abseal/internal/testmedia"
)

// heapInUse is the Go heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// Pictures added to a pictureFile are kept outside the Go heap, read back
// as written, across chunks, and refused at the wrong size.
func TestPictureFileOffHeap(t *testing.T) {
	const size, n = 160 * 90, 8000 // 115 MB, several chunks
	before := heapInUse()
	pf, err := newPictureFile(size)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.release()
	pics := make([][]byte, n)
	y := make([]byte, size)
	for i := range n {
		for k := range y {
			y[k] = byte(i*7 + k)
		}
		if pics[i], err = pf.add(y); err != nil {
			t.Fatal(err)
		}
	}
	if grown := int64(heapInUse()) - int64(before); grown > 8<<20 {
		t.Errorf("heap grew by %d MB for %d MB of pictures", grown>>20, n*size>>20)
	}
	if len(pf.chunks) < 2 {
		t.Fatalf("%d chunks, want several", len(pf.chunks))
	}
	for _, i := range []int{0, 1, pf.per - 1, pf.per, n - 1} {
		for k := range y {
			y[k] = byte(i*7 + k)
		}
		if !bytes.Equal(pics[i], y) {
			t.Fatalf("picture %d reads back different bytes", i)
		}
		if cap(pics[i]) != size {
			t.Fatalf("picture %d has capacity %d: an append would run into the next", i, cap(pics[i]))
		}
	}
	if _, err := pf.add(make([]byte, size-1)); err == nil {
		t.Error("a picture of the wrong size was stored")
	}
}

// A decoded suspect's frames are not on the heap, and are released with
// the suspect.
func TestSuspectFramesOffHeap(t *testing.T) {
	clip := testmedia.Clip(t, "forensic-56s.mp4")
	before := heapInUse()
	sus, _, err := DecodeSuspect(t.Context(), clip)
	if err != nil {
		t.Fatal(err)
	}
	bytesHeld := len(sus.Frames) * sus.W * sus.H
	if len(sus.Frames) < 1000 {
		t.Fatalf("%d frames decoded, want a 56 s clip's", len(sus.Frames))
	}
	if grown := int64(heapInUse()) - int64(before); grown > int64(bytesHeld)/4 {
		t.Errorf("heap grew by %d kB for %d kB of frames", grown>>10, bytesHeld>>10)
	}
	var sum int
	for _, f := range sus.Frames {
		sum += int(f.Y[len(f.Y)/2])
	}
	if sum == 0 {
		t.Error("the frames read back black")
	}
	runtime.KeepAlive(sus)
}
