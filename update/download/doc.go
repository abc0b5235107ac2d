// Package download fetches an artifact described by a signed chunk list:
// several HTTP Range requests at once, every chunk hashed as it streams
// and written in place only once it matches, a restart fetching only what
// is missing or wrong on disk, memory bounded by the chunk size whatever
// the artifact's.
//
// [Fetch] is the whole engine:
//
//   - The chunks still missing are cut into segments (DefaultSegmentSize)
//     and Parallel workers fetch a segment each with one Range request,
//     reading whole chunks into their own buffer, hashing them (with the
//     SIMD SHA-256 of the verify package) and writing them at their offset
//     in a preallocated "<path>.partial" file. The signed chunk list is the
//     authority: once every chunk matched, the file is synced and renamed
//     to path, with no second pass over it.
//   - What a previous run left in the partial file is verified again, in
//     parallel, and kept where it matches: after a power cut, a killed
//     process or a lost network, only missing or wrong chunks are fetched.
//   - A chunk whose hash differs is fetched again, ChunkAttempts times in
//     all, then the download fails with a [*CorruptError] naming it.
//     Network and server errors are retried with jittered backoff, obeying
//     Retry-After, then the next mirror is tried.
//   - Requests carry If-Range with the ETag first served, so a file that
//     changed on a mirror is noticed at once ([ErrChanged]); a server that
//     ignores Range is read as one sequential stream instead of once per
//     segment.
//   - A full disk is found before anything is fetched (the file is
//     preallocated) and reported as a [*DiskFullError]; nothing verified is
//     removed.
//   - RateLimit caps the bandwidth; Allow can pause the download (a metered
//     link, a big payload off Wi-Fi), which returns a [*PausedError] and
//     keeps what was fetched; Progress reports bytes, chunks, rate and ETA.
package download
