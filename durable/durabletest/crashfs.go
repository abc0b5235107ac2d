package durabletest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/upkeephq/upkeep/durable"
)

// ErrCrashed is what every operation returns while the power is off:
// between a crash and [CrashFS.Restart], and on any file opened before it.
var ErrCrashed = errors.New("durabletest: the power is off")

// Loss says what a power cut loses of what was written but not synced.
type Loss int

const (
	// LoseUnsynced forgets everything not synced: file data and modes
	// changed since the file's last Sync, and entries created, renamed or
	// removed in a directory, and the directory's own mode, since its last
	// SyncDir. This is all POSIX promises.
	LoseUnsynced Loss = iota
	// LoseSome keeps, for each file and each directory independently, a
	// random prefix of the operations since its last sync, the last of
	// them possibly torn (a write cut partway). Real disks often keep
	// more than they promise; code must be right either way.
	LoseSome
	// LoseAny is the write-back of a disk cut mid-flight. For each file
	// with unsynced changes, every unsynced write, split into 4 KiB pieces
	// on page boundaries of the file, survives or not independently of
	// the others (so a later write can survive where an earlier one did
	// not), every unsynced truncate survives or not, and the file's size
	// ends up anywhere from its synced size to its size at the crash. A
	// byte no surviving write covered reads as it was synced, or as zero
	// past the synced end. Its mode keeps a random prefix of its unsynced
	// chmods. Directories keep a random prefix of their unsynced changes,
	// as under LoseSome.
	LoseAny
)

func (l Loss) String() string {
	switch l {
	case LoseSome:
		return "lose-some"
	case LoseAny:
		return "lose-any"
	}
	return "lose-unsynced"
}

// CrashFS is an in-memory [durable.FS] that loses power on demand. Paths
// are slash-separated; relative ones are taken from the root "/".
//
// Writes go to memory and are durable only once synced: a file's content
// and mode by File.Sync, a directory's entries and mode by SyncDir (or
// Sync on the directory opened as a file). [CrashFS.CrashAfter] arms a
// power cut at a coming mutating operation, which happens either just
// before or just after that operation; from then on every operation fails
// with [ErrCrashed]. [CrashFS.Restart] brings the power back: what was not
// synced is lost as the [Loss] says, and files opened before the crash
// stay dead.
//
// The mutating operations, the only crash points, are: every write,
// truncate (File.Truncate, and OpenFile with O_TRUNC of a non-empty file),
// sync (File.Sync, SyncDir), create (OpenFile creating a file), mkdir,
// rename, remove, chmod and symlink. Reads, Seek, Stat, Lstat, ReadDir,
// Readlink, Close and an OpenFile that neither creates nor truncates
// change nothing and are not crash points (they still fail while the
// power is off).
//
// A rename within one directory is one change to it, never half done. A
// rename from one directory to another is two independent changes, the
// new name added to the new directory and the old one removed from the
// old, each durable when its own directory is synced. A crash can so
// leave both names (one file under two names, as a hard link) or, when
// only the old directory was synced or under LoseSome and LoseAny, no
// name at all. This is stricter than ext4 and other journaling
// filesystems, which commit such a rename whole, but it is all POSIX
// promises; it covers every outcome a journaling filesystem has, so code
// that survives it survives those. Code that needs a moved file to
// survive must sync both directories, the new one first (as
// [durable.Rename] does).
//
// Symlinks resolve as the kernel resolves them: a relative target from
// the directory that holds the link, and ".." from the directory the path
// has reached, so "a/.." is the parent of wherever a leads, not the
// directory holding a.
//
// A file's space counts against [CrashFS.SetCapacity] for as long as it
// has a name or an open handle: removing (or renaming over) a file that
// is still open frees its space only when its last handle is closed, as
// on POSIX. A crash closes every handle.
//
// CrashFS is safe for concurrent use. All its randomness comes from the
// seed given to [NewCrashFS], so a failure reproduces from its seed.
type CrashFS struct {
	mu       sync.Mutex
	root     *node
	nextID   uint64
	epoch    uint64
	rng      *rand.Rand
	ops      int
	crashAt  int
	crashed  bool
	after    bool // the armed crash comes after the current operation
	capacity int64
	used     int64
	trace    []string
}

var _ durable.FS = (*CrashFS)(nil)

type node struct {
	id    uint64
	mode  fs.FileMode // type bits and permissions
	mtime time.Time
	// The mode as of the last sync (file or directory).
	syncMode fs.FileMode
	// A regular file's content now, as of its last sync, and the
	// operations since.
	data    []byte
	synced  []byte
	pending []fileOp
	// A directory's entries now, as of its last sync, and the changes since.
	entries  map[string]*node
	dsynced  map[string]*node
	dpending []dirOp
	// A symlink's target.
	target string
	// How many directory entries name the node now, and how many handles
	// have it open: its space is freed when both are zero.
	nlink int
	open  int
}

type fileOp struct {
	write bool
	off   int64
	data  []byte      // write
	size  int64       // truncate
	mode  fs.FileMode // chmod, when non-zero
}

// dirOp is one change to a directory: it sets names to nodes (nil removes
// the name), all at once, so that a rename within a directory is never
// half done; or, when mode is non-zero, it changes the directory's mode.
type dirOp struct {
	names []string
	nodes []*node
	mode  fs.FileMode
}

const traceLen = 64

// NewCrashFS returns an empty CrashFS whose root "/" is durable, drawing
// its randomness (which side of an operation a crash falls on, what
// LoseSome and LoseAny keep) from seed.
func NewCrashFS(seed uint64) *CrashFS {
	f := &CrashFS{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	f.root = f.newNode(fs.ModeDir | 0o755)
	return f
}

func (f *CrashFS) newNode(mode fs.FileMode) *node {
	f.nextID++
	n := &node{id: f.nextID, mode: mode, syncMode: mode, mtime: time.Unix(int64(f.nextID), 0)}
	if mode.IsDir() {
		n.entries, n.dsynced = map[string]*node{}, map[string]*node{}
	}
	return n
}

// CrashAfter arms a power cut at the n-th mutating operation from now
// (n ≥ 1); 0 disarms it.
func (f *CrashFS) CrashAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		f.crashAt = 0
		return
	}
	f.crashAt = f.ops + n
}

// PowerCut cuts the power now.
func (f *CrashFS) PowerCut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashed = true
	f.record("power cut")
}

// Crashed reports whether the power is off.
func (f *CrashFS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// Ops returns how many mutating operations have run since NewCrashFS.
func (f *CrashFS) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// SetCapacity makes writes that would grow the data held above n bytes
// fail with ENOSPC (a full disk); 0 means no limit.
func (f *CrashFS) SetCapacity(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capacity = n
}

// Trace returns the last operations, oldest first, for failure messages.
func (f *CrashFS) Trace() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.trace)
}

// Persist makes everything durable, as if every file and directory had
// been synced: for setting up a test.
func (f *CrashFS) Persist() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle(f.root, map[*node]bool{}, func(n *node) {
		n.synced, n.syncMode, n.pending = slices.Clone(n.data), n.mode, nil
	}, func(n *node) {
		n.dsynced, n.syncMode, n.dpending = cloneEntries(n.entries), n.mode, nil
	})
}

// Restart brings the power back after a crash or PowerCut (or cuts it and
// brings it back, if it was on): what was not synced is lost as loss says,
// files opened before stay dead, and any armed crash is disarmed.
func (f *CrashFS) Restart(loss Loss) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	f.crashed, f.after, f.crashAt = false, false, 0
	f.record("restart (" + loss.String() + ")")
	f.settle(f.root, map[*node]bool{}, func(n *node) {
		var data []byte
		var mode fs.FileMode
		if loss == LoseAny {
			data, mode = f.loseAny(n)
		} else {
			data, mode = slices.Clone(n.synced), n.syncMode
			keep := 0
			if loss == LoseSome {
				keep = f.rng.IntN(len(n.pending) + 1)
			}
			for i, op := range n.pending[:keep] {
				torn := i == keep-1 && op.write && len(op.data) > 1 && f.rng.IntN(4) == 0
				data, mode = op.apply(data, mode, torn, f.rng)
			}
		}
		n.data, n.synced, n.mode, n.syncMode, n.pending = data, slices.Clone(data), mode, mode, nil
	}, func(n *node) {
		entries, mode := cloneEntries(n.dsynced), n.syncMode
		keep := 0
		if loss != LoseUnsynced {
			keep = f.rng.IntN(len(n.dpending) + 1)
		}
		for _, op := range n.dpending[:keep] {
			mode = op.apply(entries, mode)
		}
		n.entries, n.dsynced, n.mode, n.syncMode, n.dpending = entries, cloneEntries(entries), mode, mode, nil
	})
	f.recount()
}

// loseAny is what LoseAny leaves of a file: see [LoseAny].
func (f *CrashFS) loseAny(n *node) ([]byte, fs.FileMode) {
	data, mode := slices.Clone(n.synced), n.syncMode
	var chmods []fs.FileMode
	for _, op := range n.pending {
		switch {
		case op.write:
			for off := op.off; off < op.off+int64(len(op.data)); {
				end := min((off/pageSize+1)*pageSize, op.off+int64(len(op.data)))
				if f.rng.IntN(2) == 0 {
					data = writeAt(data, op.data[off-op.off:end-op.off], off)
				}
				off = end
			}
		case op.mode != 0:
			chmods = append(chmods, op.mode)
		default:
			if f.rng.IntN(2) == 0 {
				data = resize(data, op.size)
			}
		}
	}
	if keep := f.rng.IntN(len(chmods) + 1); keep > 0 {
		mode = chmods[keep-1]
	}
	lo, hi := int64(len(n.synced)), int64(len(n.data))
	if lo > hi {
		lo, hi = hi, lo
	}
	var size int64
	switch f.rng.IntN(4) { // the ends of the range, often, so they are met
	case 0:
		size = int64(len(n.synced))
	case 1:
		size = int64(len(n.data))
	default:
		size = lo + f.rng.Int64N(hi-lo+1)
	}
	return resize(data, size), mode
}

// pageSize is the unit in which LoseAny writes file data back.
const pageSize = 4096

// settle visits every node reachable after the directory settles: dir is
// called on a directory before its entries are followed.
func (f *CrashFS) settle(n *node, seen map[*node]bool, file, dir func(*node)) {
	if seen[n] {
		return
	}
	seen[n] = true
	switch {
	case n.mode.IsDir():
		dir(n)
		for _, name := range sortedNames(n.entries) {
			f.settle(n.entries[name], seen, file, dir)
		}
	case n.mode.IsRegular():
		file(n)
	}
}

// recount sets, after a restart, how many names each node has, that none
// is open, and the space used.
func (f *CrashFS) recount() {
	var nodes []*node
	seen := map[*node]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		nodes = append(nodes, n)
		for _, c := range n.entries {
			walk(c)
		}
	}
	walk(f.root)
	f.used = 0
	for _, n := range nodes {
		n.nlink, n.open = 0, 0
		f.used += int64(len(n.data))
	}
	for _, n := range nodes {
		for _, c := range n.entries {
			c.nlink++
		}
	}
}

func (op fileOp) apply(data []byte, mode fs.FileMode, torn bool, rng *rand.Rand) ([]byte, fs.FileMode) {
	switch {
	case op.write:
		b := op.data
		if torn {
			b = b[:rng.IntN(len(b))]
		}
		return writeAt(data, b, op.off), mode
	case op.mode != 0:
		return data, op.mode
	}
	return resize(data, op.size), mode
}

// apply applies op to a directory's entries, and returns its mode after.
func (op dirOp) apply(entries map[string]*node, mode fs.FileMode) fs.FileMode {
	for i, name := range op.names {
		if op.nodes[i] == nil {
			delete(entries, name)
		} else {
			entries[name] = op.nodes[i]
		}
	}
	if op.mode != 0 {
		return op.mode
	}
	return mode
}

func writeAt(data, b []byte, off int64) []byte {
	if end := off + int64(len(b)); end > int64(len(data)) {
		data = resize(data, end)
	}
	copy(data[off:], b)
	return data
}

func resize(data []byte, size int64) []byte {
	if size <= int64(len(data)) {
		return data[:size]
	}
	return append(data, make([]byte, size-int64(len(data)))...)
}

func cloneEntries(m map[string]*node) map[string]*node {
	c := make(map[string]*node, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func sortedNames(m map[string]*node) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// begin starts a mutating operation: it fails if the power is off, and
// fires an armed crash before or after the operation. The caller calls end.
func (f *CrashFS) begin(op, name string) error {
	if f.crashed {
		return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	f.ops++
	f.record(op + " " + name)
	if f.crashAt > 0 && f.ops == f.crashAt {
		if f.rng.IntN(2) == 0 {
			f.crashed = true
			f.record("crash before " + op)
			return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
		}
		f.after = true
	}
	return nil
}

func (f *CrashFS) end(op string) {
	if f.after {
		f.after, f.crashed = false, true
		f.record("crash after " + op)
	}
}

func (f *CrashFS) record(s string) {
	f.trace = append(f.trace, fmt.Sprintf("#%d %s", f.ops, s))
	if len(f.trace) > traceLen {
		f.trace = f.trace[len(f.trace)-traceLen:]
	}
}

func (f *CrashFS) reading(op, name string) error {
	if f.crashed {
		return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	return nil
}

// clean makes name absolute and clean, for naming things (never for
// resolving them: see walk).
func clean(name string) string {
	return path.Clean("/" + name)
}

// maxLinks is how many symlinks one path may go through, as on Linux.
const maxLinks = 40

// lookup resolves name to its node (nil if it does not exist), following
// symlinks in every component but the last unless follow.
func (f *CrashFS) lookup(op, name string, follow bool) (*node, error) {
	r, err := f.resolve(op, name, follow)
	return r.n, err
}

// resolved is where a path leads.
type resolved struct {
	n *node // nil if the last component does not exist
	// The directory holding the last component, and the directories from
	// the root down to it.
	parent *node
	dirs   []*node
	// The last component; "" when the path ends in ".", ".." or is the
	// root: n is then a directory that no name of the path's own denotes.
	base string
}

// resolve resolves name from the root.
func (f *CrashFS) resolve(op, name string, follow bool) (resolved, error) {
	links := 0
	dirs, n, base, err := f.walk(op, name, []*node{f.root}, name, follow, &links)
	if err != nil {
		return resolved{}, err
	}
	if base == "" {
		dirs = dirs[:max(1, len(dirs)-1)] // n is dirs' last
	}
	return resolved{n: n, parent: dirs[len(dirs)-1], dirs: dirs, base: base}, nil
}

// walk resolves p from the directory at the end of start, a chain of
// directories from the root, component by component as the kernel does:
// ".." goes up the chain actually walked, and a symlink is replaced by
// the chain its target resolves to, a relative target being resolved
// from the directory holding the link. It returns the chain down to the
// directory holding the last component, the node that component names
// (nil if none) and the component; or, when the last component is "." or
// ".." (or p is "/"), the chain down to the directory reached, that
// directory, and "".
func (f *CrashFS) walk(op, name string, start []*node, p string, follow bool, links *int) ([]*node, *node, string, error) {
	fail := func(err error) ([]*node, *node, string, error) {
		return nil, nil, "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	dirs := slices.Clone(start)
	if strings.HasPrefix(p, "/") {
		dirs = []*node{f.root}
	}
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	// A trailing slash asks for a directory, following a final symlink.
	trailing := len(parts) > 0 && strings.HasSuffix(p, "/")
	follow = follow || trailing
	if len(parts) == 0 {
		return dirs, dirs[len(dirs)-1], "", nil
	}
	for i, part := range parts {
		last := i == len(parts)-1
		switch part {
		case ".":
		case "..":
			if len(dirs) > 1 {
				dirs = dirs[:len(dirs)-1]
			}
		default:
			child := dirs[len(dirs)-1].entries[part]
			switch {
			case last && (child == nil || child.mode&fs.ModeSymlink == 0 || !follow):
				if trailing && child != nil && !child.mode.IsDir() {
					return fail(syscall.ENOTDIR)
				}
				return dirs, child, part, nil
			case child == nil:
				return fail(fs.ErrNotExist)
			case child.mode&fs.ModeSymlink != 0:
				if *links++; *links > maxLinks {
					return fail(syscall.ELOOP)
				}
				tdirs, tn, tbase, err := f.walk(op, name, dirs, child.target, true, links)
				switch {
				case err != nil:
					return nil, nil, "", err
				case last && trailing && tn != nil && !tn.mode.IsDir():
					return fail(syscall.ENOTDIR)
				case last:
					return tdirs, tn, tbase, nil // tn may be nil: a dangling link
				case tn == nil:
					return fail(fs.ErrNotExist)
				case !tn.mode.IsDir():
					return fail(syscall.ENOTDIR)
				case tbase != "":
					tdirs = append(tdirs, tn)
				}
				dirs = tdirs
			case !child.mode.IsDir():
				return fail(syscall.ENOTDIR)
			default:
				dirs = append(dirs, child)
			}
		}
		if last {
			return dirs, dirs[len(dirs)-1], "", nil
		}
	}
	panic("unreachable")
}

// setEntry changes one name in a directory, recording the change.
func (f *CrashFS) setEntry(dir *node, name string, n *node) {
	f.change(dir, dirOp{names: []string{name}, nodes: []*node{n}})
}

// change changes a directory now and records the change as pending,
// freeing the space of files left with no name and no handle.
func (f *CrashFS) change(dir *node, op dirOp) {
	var dropped []*node
	for i, name := range op.names {
		if old := dir.entries[name]; old != nil {
			old.nlink--
			dropped = append(dropped, old)
		}
		if n := op.nodes[i]; n != nil {
			n.nlink++
		}
	}
	dir.mode = op.apply(dir.entries, dir.mode)
	dir.dpending = append(dir.dpending, op)
	for _, n := range dropped {
		f.release(n)
	}
}

// release frees a file's space once it has no name and no open handle.
func (f *CrashFS) release(n *node) {
	if n.nlink == 0 && n.open == 0 {
		f.used -= int64(len(n.data))
	}
}

// OpenFile opens a file as os.OpenFile does.
func (f *CrashFS) OpenFile(name string, flag int, perm fs.FileMode) (durable.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("open", name); err != nil {
		return nil, err
	}
	r, err := f.resolve("open", name, flag&(os.O_CREATE|os.O_EXCL) != os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, err
	}
	n := r.n
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case n != nil && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case n != nil && n.mode.IsDir() && writable:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case n != nil && n.mode&fs.ModeSymlink != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ELOOP}
	case n == nil:
		if err := f.begin("create", name); err != nil {
			return nil, err
		}
		n = f.newNode(perm.Perm())
		f.setEntry(r.parent, r.base, n)
		f.end("create")
	case flag&os.O_TRUNC != 0 && writable && len(n.data) > 0:
		if err := f.begin("truncate", name); err != nil {
			return nil, err
		}
		f.used -= int64(len(n.data))
		n.data = n.data[:0]
		n.pending = append(n.pending, fileOp{size: 0})
		f.end("truncate")
	}
	n.open++
	return &file{fs: f, n: n, name: name, flag: flag, epoch: f.epoch}, nil
}

// Mkdir creates a directory.
func (f *CrashFS) Mkdir(name string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("mkdir", name); err != nil {
		return err
	}
	r, err := f.resolve("mkdir", name, false)
	if err != nil {
		return err
	}
	if r.n != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: fs.ErrExist}
	}
	if err := f.begin("mkdir", name); err != nil {
		return err
	}
	defer f.end("mkdir")
	f.setEntry(r.parent, r.base, f.newNode(fs.ModeDir|perm.Perm()))
	return nil
}

// Remove removes a file, a symlink or an empty directory.
func (f *CrashFS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("remove", name); err != nil {
		return err
	}
	r, err := f.resolve("remove", name, false)
	if err != nil {
		return err
	}
	n := r.n
	switch {
	case n == nil:
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	case n == f.root:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EBUSY}
	case r.base == "":
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EINVAL}
	case n.mode.IsDir() && len(n.entries) > 0:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	if err := f.begin("remove", name); err != nil {
		return err
	}
	defer f.end("remove")
	f.setEntry(r.parent, r.base, nil)
	return nil
}

// Rename renames a file or directory, replacing what newpath names. A
// rename from one directory to another is two changes, one to each: see
// [CrashFS].
func (f *CrashFS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	lerr := func(err error) error { return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err} }
	if f.crashed {
		return lerr(ErrCrashed)
	}
	src, err := f.resolve("rename", oldpath, false)
	if err != nil {
		return err
	}
	n := src.n
	if n == nil {
		return lerr(fs.ErrNotExist)
	}
	dst, err := f.resolve("rename", newpath, false)
	if err != nil {
		return err
	}
	switch {
	case n == f.root || dst.n == f.root:
		return lerr(syscall.EBUSY)
	case src.base == "" || dst.base == "":
		return lerr(syscall.EINVAL)
	case dst.n == n:
		return nil
	case n.mode.IsDir() && slices.Contains(dst.dirs, n):
		return lerr(syscall.EINVAL) // into itself
	}
	if dst.n != nil {
		switch {
		case dst.n.mode.IsDir() && !n.mode.IsDir():
			return lerr(syscall.EISDIR)
		case !dst.n.mode.IsDir() && n.mode.IsDir():
			return lerr(syscall.ENOTDIR)
		case dst.n.mode.IsDir() && len(dst.n.entries) > 0:
			return lerr(syscall.ENOTEMPTY)
		}
	}
	if err := f.begin("rename", oldpath+" → "+newpath); err != nil {
		return err
	}
	defer f.end("rename")
	if src.parent == dst.parent {
		f.change(src.parent, dirOp{names: []string{src.base, dst.base}, nodes: []*node{nil, n}})
	} else {
		f.setEntry(dst.parent, dst.base, n)
		f.setEntry(src.parent, src.base, nil)
	}
	return nil
}

// ReadDir lists a directory, sorted by name.
func (f *CrashFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("readdir", name); err != nil {
		return nil, err
	}
	n, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	switch {
	case n == nil:
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	case !n.mode.IsDir():
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENOTDIR}
	}
	var out []fs.DirEntry
	for _, child := range sortedNames(n.entries) {
		out = append(out, fs.FileInfoToDirEntry(info{name: child, n: n.entries[child]}))
	}
	return out, nil
}

// Stat describes the file at name, following symlinks.
func (f *CrashFS) Stat(name string) (fs.FileInfo, error) { return f.stat("stat", name, true) }

// Lstat describes the file at name, not following a final symlink.
func (f *CrashFS) Lstat(name string) (fs.FileInfo, error) { return f.stat("lstat", name, false) }

func (f *CrashFS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading(op, name); err != nil {
		return nil, err
	}
	n, err := f.lookup(op, name, follow)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return info{name: path.Base(clean(name)), n: n}, nil
}

// Chmod changes a file's permissions, following symlinks.
func (f *CrashFS) Chmod(name string, mode fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("chmod", name); err != nil {
		return err
	}
	n, err := f.lookup("chmod", name, true)
	if err != nil {
		return err
	}
	if n == nil {
		return &fs.PathError{Op: "chmod", Path: name, Err: fs.ErrNotExist}
	}
	return f.chmod(n, name, mode)
}

func (f *CrashFS) chmod(n *node, name string, mode fs.FileMode) error {
	if err := f.begin("chmod", name); err != nil {
		return err
	}
	defer f.end("chmod")
	m := n.mode.Type() | mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if n.mode.IsDir() {
		f.change(n, dirOp{mode: m}) // durable with the directory's entries
		return nil
	}
	n.mode = m
	n.pending = append(n.pending, fileOp{mode: m})
	return nil
}

// Symlink makes newname a symlink to oldname.
func (f *CrashFS) Symlink(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("symlink", newname); err != nil {
		return err
	}
	r, err := f.resolve("symlink", newname, false)
	if err != nil {
		return err
	}
	if r.n != nil {
		return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: fs.ErrExist}
	}
	if err := f.begin("symlink", newname); err != nil {
		return err
	}
	defer f.end("symlink")
	l := f.newNode(fs.ModeSymlink | 0o777)
	l.target = oldname
	f.setEntry(r.parent, r.base, l)
	return nil
}

// Readlink returns a symlink's target.
func (f *CrashFS) Readlink(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("readlink", name); err != nil {
		return "", err
	}
	n, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n == nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrNotExist}
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
	}
	return n.target, nil
}

// SyncDir makes a directory's entries and mode durable.
func (f *CrashFS) SyncDir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reading("syncdir", name); err != nil {
		return err
	}
	n, err := f.lookup("syncdir", name, true)
	if err != nil {
		return err
	}
	if n == nil {
		return &fs.PathError{Op: "syncdir", Path: name, Err: fs.ErrNotExist}
	}
	return f.syncNode(n, name)
}

func (f *CrashFS) syncNode(n *node, name string) error {
	if err := f.begin("sync", name); err != nil {
		return err
	}
	defer f.end("sync")
	switch {
	case n.mode.IsDir():
		n.dsynced, n.syncMode, n.dpending = cloneEntries(n.entries), n.mode, nil
	case n.mode.IsRegular():
		n.synced, n.syncMode, n.pending = slices.Clone(n.data), n.mode, nil
	}
	return nil
}

// file is an open file of a CrashFS.
type file struct {
	fs     *CrashFS
	n      *node
	name   string
	flag   int
	epoch  uint64
	off    int64
	closed bool
}

func (h *file) check(op string) error {
	switch {
	case h.closed:
		return &fs.PathError{Op: op, Path: h.name, Err: fs.ErrClosed}
	case h.fs.crashed || h.epoch != h.fs.epoch:
		return &fs.PathError{Op: op, Path: h.name, Err: ErrCrashed}
	}
	return nil
}

func (h *file) Name() string { return h.name }

func (h *file) Read(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	n, err := h.readAt(p, h.off)
	h.off += int64(n)
	return n, err
}

func (h *file) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return h.readAt(p, off)
}

func (h *file) readAt(p []byte, off int64) (int, error) {
	if err := h.check("read"); err != nil {
		return 0, err
	}
	switch {
	case h.n.mode.IsDir():
		return 0, &fs.PathError{Op: "read", Path: h.name, Err: syscall.EISDIR}
	case h.flag&(os.O_WRONLY|os.O_RDWR) == os.O_WRONLY:
		return 0, &fs.PathError{Op: "read", Path: h.name, Err: syscall.EBADF}
	case off < 0:
		return 0, &fs.PathError{Op: "read", Path: h.name, Err: syscall.EINVAL}
	case off >= int64(len(h.n.data)):
		return 0, io.EOF
	}
	n := copy(p, h.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *file) Write(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	off := h.off
	if h.flag&os.O_APPEND != 0 {
		off = int64(len(h.n.data))
	}
	n, err := h.writeAt(p, off)
	h.off = off + int64(n)
	return n, err
}

func (h *file) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return h.writeAt(p, off)
}

func (h *file) writeAt(p []byte, off int64) (int, error) {
	if err := h.check("write"); err != nil {
		return 0, err
	}
	if h.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: syscall.EBADF}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: syscall.EINVAL}
	}
	grow := max(0, off+int64(len(p))-int64(len(h.n.data)))
	if h.fs.capacity > 0 && h.fs.used+grow > h.fs.capacity {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: syscall.ENOSPC}
	}
	if err := h.fs.begin("write", h.name); err != nil {
		return 0, err
	}
	defer h.fs.end("write")
	h.n.data = writeAt(h.n.data, p, off)
	h.n.pending = append(h.n.pending, fileOp{write: true, off: off, data: slices.Clone(p)})
	h.fs.used += grow
	return len(p), nil
}

func (h *file) Seek(offset int64, whence int) (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("seek"); err != nil {
		return 0, err
	}
	switch whence {
	case io.SeekCurrent:
		offset += h.off
	case io.SeekEnd:
		offset += int64(len(h.n.data))
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: h.name, Err: syscall.EINVAL}
	}
	h.off = offset
	return offset, nil
}

func (h *file) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return &fs.PathError{Op: "close", Path: h.name, Err: fs.ErrClosed}
	}
	h.closed = true
	if h.epoch == h.fs.epoch { // a crash closed the handles opened before it
		h.n.open--
		h.fs.release(h.n)
	}
	return nil
}

func (h *file) Stat() (fs.FileInfo, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("stat"); err != nil {
		return nil, err
	}
	return info{name: path.Base(clean(h.name)), n: h.n}, nil
}

func (h *file) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("sync"); err != nil {
		return err
	}
	return h.fs.syncNode(h.n, h.name)
}

func (h *file) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("truncate"); err != nil {
		return err
	}
	if h.flag&(os.O_WRONLY|os.O_RDWR) == 0 || size < 0 {
		return &fs.PathError{Op: "truncate", Path: h.name, Err: syscall.EINVAL}
	}
	grow := max(0, size-int64(len(h.n.data)))
	if h.fs.capacity > 0 && h.fs.used+grow > h.fs.capacity {
		return &fs.PathError{Op: "truncate", Path: h.name, Err: syscall.ENOSPC}
	}
	if err := h.fs.begin("truncate", h.name); err != nil {
		return err
	}
	defer h.fs.end("truncate")
	h.fs.used += size - int64(len(h.n.data))
	h.n.data = resize(h.n.data, size)
	h.n.pending = append(h.n.pending, fileOp{size: size})
	return nil
}

func (h *file) Chmod(mode fs.FileMode) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("chmod"); err != nil {
		return err
	}
	return h.fs.chmod(h.n, h.name, mode)
}

// info is a FileInfo of a CrashFS node.
type info struct {
	name string
	n    *node
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return int64(len(i.n.data)) }
func (i info) Mode() fs.FileMode  { return i.n.mode }
func (i info) ModTime() time.Time { return i.n.mtime }
func (i info) IsDir() bool        { return i.n.mode.IsDir() }
func (i info) Sys() any           { return fileID(i.n.id) }

// fileID identifies a node, for durable.SameFile.
type fileID uint64

func (id fileID) FileID() uint64 { return uint64(id) }
