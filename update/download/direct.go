package download

import (
	"errors"
	"syscall"
	"unsafe"
)

// directAlign is the alignment O_DIRECT asks of a write's memory, offset
// and length: the largest logical block size in common use.
const directAlign = 4096

// alignedBuffer returns n bytes starting at a directAlign boundary.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1)); r != 0 {
		skip = directAlign - r
	}
	return b[skip : skip+n : skip+n]
}

// directOK says whether b can be written at off with O_DIRECT.
func directOK(b []byte, off int64) bool {
	return len(b) > 0 && len(b)%directAlign == 0 && off%directAlign == 0 &&
		uintptr(unsafe.Pointer(&b[0]))&(directAlign-1) == 0
}

// writeAt writes b at off of the partial file: directly when it can,
// through the page cache otherwise (the artifact's last piece, a piece
// after an odd-sized resumed prefix, Buffered, or a filesystem that took
// the O_DIRECT open but refuses the write).
func (e *engine) writeAt(b []byte, off int64) error {
	if d := e.direct; d != nil && !e.directOff.Load() && directOK(b, off) {
		_, err := d.WriteAt(b, off)
		if err == nil {
			e.directN.Add(int64(len(b)))
			return nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		e.directOff.Store(true)
		e.log.Info("download: the filesystem refuses direct writes; writing through the page cache", "err", err)
	}
	_, err := e.f.WriteAt(b, off)
	return err
}
