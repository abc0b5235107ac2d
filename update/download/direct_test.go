package download

import (
	"testing"
	"unsafe"
)

func TestAlignedBuffer(t *testing.T) {
	for _, n := range []int{1, 4096, 5000, 256 << 10} {
		b := alignedBuffer(n)
		if len(b) != n || cap(b) != n {
			t.Errorf("alignedBuffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		if a := uintptr(unsafe.Pointer(&b[0])) % directAlign; a != 0 {
			t.Errorf("alignedBuffer(%d) starts %d bytes past a boundary", n, a)
		}
	}
}

func TestDirectOK(t *testing.T) {
	b := alignedBuffer(3 * directAlign)
	tests := []struct {
		name string
		b    []byte
		off  int64
		want bool
	}{
		{"whole blocks at a boundary", b, 8192, true},
		{"empty", b[:0], 0, false},
		{"odd length", b[:5000], 0, false},
		{"odd offset", b[:4096], 100, false},
		{"unaligned memory", b[1 : 1+4096], 0, false},
	}
	for _, tt := range tests {
		if got := directOK(tt.b, tt.off); got != tt.want {
			t.Errorf("%s: directOK = %v, want %v", tt.name, got, tt.want)
		}
	}
}
