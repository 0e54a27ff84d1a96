package data

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// A shard file is a zstd stream (one or more frames) whose decompressed
// bytes are:
//
//	magic    8 bytes  "PWSHARD1"
//	version  uint32   little-endian, 1
//	records, each:
//	    length   uint32  little-endian, the payload's length in bytes
//	    payload  length bytes:
//	        label       int32   little-endian, a class index or -1
//	        origin len  uint16  little-endian, at most 4096
//	        origin      origin len bytes (Record.Origin)
//	        pixels      Size×Size×Channels bytes, channels-last (Record.Pixels)
//	    crc      uint32  little-endian, CRC-32C (Castagnoli) of the payload
//
// and nothing after the last record. The manifest gives each shard's record
// count and the SHA-256 of the compressed file, so the payload length of
// every record must be 4+2+len(origin)+Size²·Channels, and a reader never
// allocates more than the manifest's image size allows.

// Shard limits. A shard holds at most ShardRecords records or about
// ShardBytes bytes of raw payload, whichever comes first (a single record
// larger than ShardBytes gets a shard of its own).
const (
	ShardRecords = 10000
	ShardBytes   = 64 << 20
)

// MaxOrigin is the longest Record.Origin, in bytes, that a shard can hold.
const MaxOrigin = 4096

// shardRecords and shardBytes are the limits the Writer uses; tests lower them.
var (
	shardRecords = ShardRecords
	shardBytes   = ShardBytes
)

const (
	shardMagic   = "PWSHARD1"
	shardVersion = 1
	shardHeader  = len(shardMagic) + 4
	payloadHead  = 4 + 2 // label, origin length
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// shardGeom is what a shard's decoder needs to know from the manifest.
type shardGeom struct {
	size, channels int
	classes        int // labels must be in [-1, classes)
}

// pixels returns the number of pixel bytes in one record.
func (g shardGeom) pixels() int { return g.size * g.size * g.channels }

// shardWriter streams records into one shard file, hashing the compressed
// bytes as they are written.
type shardWriter struct {
	f       *os.File
	buf     *bufio.Writer
	sum     hash.Hash
	zw      *zstd.Encoder
	records int
	bytes   int // raw payload bytes written
	scratch []byte
}

func newShardWriter(path string) (*shardWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	s := &shardWriter{f: f, buf: bufio.NewWriterSize(f, 1<<18), sum: sha256.New()}
	// One goroutine per encoder: the output is deterministic and a
	// writer with several open splits stays small.
	s.zw, err = zstd.NewWriter(io.MultiWriter(s.buf, s.sum),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(8<<20))
	if err != nil {
		f.Close()
		return nil, err
	}
	var head [shardHeader]byte
	copy(head[:], shardMagic)
	binary.LittleEndian.PutUint32(head[len(shardMagic):], shardVersion)
	if _, err := s.zw.Write(head[:]); err != nil {
		s.zw.Close()
		f.Close()
		return nil, err
	}
	return s, nil
}

// add writes one record, which the caller has validated.
func (s *shardWriter) add(r Record) error {
	n := payloadHead + len(r.Origin) + len(r.Pixels)
	b := s.scratch[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(r.Label)))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.Origin)))
	b = append(b, r.Origin...)
	b = append(b, r.Pixels...)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[4:], castagnoli))
	s.scratch = b
	if _, err := s.zw.Write(b); err != nil {
		return err
	}
	s.records++
	s.bytes += n
	return nil
}

// close finishes the zstd stream, syncs and closes the file, and returns the
// hex SHA-256 of the compressed bytes.
func (s *shardWriter) close() (string, error) {
	err := s.zw.Close()
	if err == nil {
		err = s.buf.Flush()
	}
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", s.sum.Sum(nil)), nil
}

// discard closes the file without finishing it.
func (s *shardWriter) discard() {
	s.zw.Close()
	s.f.Close()
}

// decodeShard decompresses and parses the compressed shard bytes b, which
// must hold exactly want records of geometry g. Errors are *CorruptError
// with Dir and Shard left empty for the caller to fill in.
func decodeShard(b []byte, g shardGeom, want int) ([]Record, error) {
	zr, err := zstd.NewReader(bytes.NewReader(b),
		zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, &CorruptError{Record: -1, Msg: "corrupt zstd stream", Err: err}
	}
	defer zr.Close()
	return parseShard(zstdReader{zr}, g, want)
}

// zstdReader marks the decoder's errors, other than io.EOF at the end of
// the stream, as decompression errors, so that a truncated compressed file
// can be told from a well-compressed stream that ends too early.
type zstdReader struct{ r io.Reader }

func (z zstdReader) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	if err != nil && err != io.EOF {
		err = &zstdError{err}
	}
	return n, err
}

type zstdError struct{ err error }

func (e *zstdError) Error() string { return e.err.Error() }
func (e *zstdError) Unwrap() error { return e.err }

// parseShard parses a decompressed shard stream, which must hold exactly want
// records of geometry g and nothing after them. Errors are *CorruptError with
// Dir and Shard left empty. It allocates at most one payload buffer of the
// largest size g allows, plus the records it returns.
func parseShard(r io.Reader, g shardGeom, want int) ([]Record, error) {
	p := recordParser{br: bufio.NewReaderSize(r, 1<<16), g: g, want: want}
	if err := p.header(); err != nil {
		return nil, err
	}
	recs := make([]Record, 0, min(want, 1024))
	for range want {
		rec, err := p.next(true)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return recs, nil
}

// recordParser reads a decompressed shard stream record by record: header,
// then next for each of the want records, then end. Errors are
// *CorruptError with Dir and Shard left empty.
type recordParser struct {
	br      *bufio.Reader
	g       shardGeom
	want    int
	read    int    // records read so far
	payload []byte // scratch, reused
}

// header reads and checks the stream's magic and version.
func (p *recordParser) header() error {
	var head [shardHeader]byte
	if n, err := io.ReadFull(p.br, head[:]); err != nil {
		return streamErr(-1, fmt.Sprintf("truncated: %d of %d header bytes", n, shardHeader), err)
	}
	if string(head[:len(shardMagic)]) != shardMagic {
		return &CorruptError{Record: -1, Msg: fmt.Sprintf("bad magic %q: want %q", head[:len(shardMagic)], shardMagic)}
	}
	if v := binary.LittleEndian.Uint32(head[len(shardMagic):]); v != shardVersion {
		return &CorruptError{Record: -1, Msg: fmt.Sprintf("shard format version %d: this build reads version %d", v, shardVersion)}
	}
	return nil
}

// next reads the next record and checks its length, CRC and label. With
// keep false it returns the record without its pixels and origin (a record
// skipped over), allocating nothing.
func (p *recordParser) next(keep bool) (Record, error) {
	i := p.read
	if i >= p.want {
		return Record{}, &CorruptError{Record: -1, Msg: fmt.Sprintf("read past the %d records of the shard", p.want)}
	}
	g := p.g
	pix := g.pixels()
	minLen, maxLen := payloadHead+pix, payloadHead+MaxOrigin+pix
	var lb [4]byte
	if _, err := io.ReadFull(p.br, lb[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Record{}, &CorruptError{Record: -1, Msg: fmt.Sprintf("truncated: %d records, the manifest says %d", i, p.want)}
		}
		return Record{}, streamErr(i, "truncated record length", err)
	}
	n := int(binary.LittleEndian.Uint32(lb[:]))
	if n < minLen || n > maxLen {
		return Record{}, &CorruptError{Record: i, Msg: fmt.Sprintf("payload of %d bytes: %d×%d×%d images need %d to %d",
			n, g.size, g.size, g.channels, minLen, maxLen)}
	}
	if cap(p.payload) < n+4 {
		p.payload = make([]byte, n+4, max(n+4, min(2*cap(p.payload), maxLen+4)))
	}
	payload := p.payload[:n+4]
	if m, err := io.ReadFull(p.br, payload); err != nil {
		return Record{}, streamErr(i, fmt.Sprintf("truncated: %d of %d payload and checksum bytes", m, n+4), err)
	}
	if crc32.Checksum(payload[:n], castagnoli) != binary.LittleEndian.Uint32(payload[n:]) {
		return Record{}, &CorruptError{Record: i, Msg: "checksum mismatch"}
	}
	label := int(int32(binary.LittleEndian.Uint32(payload)))
	olen := int(binary.LittleEndian.Uint16(payload[4:]))
	if olen > MaxOrigin || payloadHead+olen+pix != n {
		return Record{}, &CorruptError{Record: i, Msg: fmt.Sprintf("payload of %d bytes with a %d-byte origin: %d×%d×%d images need %d",
			n, olen, g.size, g.size, g.channels, payloadHead+olen+pix)}
	}
	if label < -1 || label >= g.classes {
		return Record{}, &CorruptError{Record: i, Msg: fmt.Sprintf("label %d out of range [-1, %d)", label, g.classes)}
	}
	p.read++
	if !keep {
		return Record{Label: label}, nil
	}
	px := make([]uint8, pix)
	copy(px, payload[payloadHead+olen:n])
	return Record{Pixels: px, Label: label, Origin: string(payload[payloadHead : payloadHead+olen])}, nil
}

// end checks that the stream ends after the last record.
func (p *recordParser) end() error {
	var extra [1]byte
	switch n, err := io.ReadFull(p.br, extra[:]); {
	case n > 0:
		return &CorruptError{Record: -1, Msg: fmt.Sprintf("trailing bytes after %d records", p.want)}
	case !errors.Is(err, io.EOF):
		return streamErr(-1, "truncated after the last record", err)
	}
	return nil
}

// streamErr turns an error from reading a shard's decompressed stream into a
// *CorruptError: a truncated or corrupt zstd stream when the decoder failed,
// a truncation described by truncMsg when the decompressed stream ended
// early, and a corrupt zstd stream otherwise (shards are decoded from bytes
// in memory, so no other errors arise).
func streamErr(rec int, truncMsg string, err error) error {
	var ze *zstdError
	if errors.As(err, &ze) {
		if errors.Is(ze.err, io.ErrUnexpectedEOF) {
			return &CorruptError{Record: rec, Msg: "truncated zstd stream"}
		}
		return &CorruptError{Record: rec, Msg: "corrupt zstd stream", Err: ze.err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &CorruptError{Record: rec, Msg: truncMsg}
	}
	return &CorruptError{Record: rec, Msg: "corrupt zstd stream", Err: err}
}
