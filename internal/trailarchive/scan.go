package trailarchive

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// Scan reads one CloudTrail log file from r, gzip-compressed JSON
// {"Records": [...]}, and calls fn with each record, raw, one at a time:
// the file is decompressed and decoded as it is read (json.Decoder's Token
// and More), never held whole in memory. It returns how many records it
// read; an error of fn stops the scan and is returned. A record longer than
// MaxRecordBytes, or a file that is not of that form, is an error.
func Scan(r io.Reader, fn func(raw []byte) error) (int, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, fmt.Errorf("not a gzip file: %w", err)
	}
	defer zr.Close()
	br := &boundedReader{r: zr}
	dec := json.NewDecoder(br)
	br.dec = dec
	if err := expectDelim(dec, '{'); err != nil {
		return 0, err
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n, err
		}
		if name, _ := tok.(string); name != "Records" {
			var skip json.RawMessage // CloudTrail writes no other member
			if err := dec.Decode(&skip); err != nil {
				return n, err
			}
			continue
		}
		if err := expectDelim(dec, '['); err != nil {
			return n, err
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return n, fmt.Errorf("record %d: %w", n+1, err)
			}
			n++
			if err := fn(raw); err != nil {
				return n, err
			}
		}
		if err := expectDelim(dec, ']'); err != nil {
			return n, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return n, err
	}
	return n, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not a CloudTrail log file: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("not a CloudTrail log file: got %v, want %q", tok, want)
	}
	return nil
}

// errRecordTooLong stops the read of a record longer than MaxRecordBytes.
var errRecordTooLong = errors.New("a record is longer than the most CloudTrail writes")

// boundedReader lets the decoder hold at most MaxRecordBytes it has not
// consumed (the bytes read so far minus its InputOffset: the value it is
// decoding and what it buffered beyond): a read gets at most the room left,
// and with none left fails. A value within the bound always completes
// within what the decoder holds.
type boundedReader struct {
	r    io.Reader
	dec  *json.Decoder
	read int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	room := MaxRecordBytes - (b.read - b.dec.InputOffset())
	if room <= 0 {
		return 0, errRecordTooLong
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

// creationNames are the quoted eventNames of the records a search decodes.
var creationNames = func() [][]byte {
	var names [][]byte
	for _, n := range events.CreationEventNames() {
		names = append(names, []byte(`"`+n+`"`))
	}
	return names
}()

// isCreation reports whether raw is a kms.amazonaws.com CreateKey or
// ReplicateKey record, looking at its eventSource and eventName only; the
// cheap byte test spares a decode of the other records.
func isCreation(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`"`+events.EventSourceKMS+`"`)) {
		return false
	}
	found := false
	for _, n := range creationNames {
		found = found || bytes.Contains(raw, n)
	}
	if !found {
		return false
	}
	var head struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
	}
	if json.Unmarshal(raw, &head) != nil || head.EventSource != events.EventSourceKMS {
		return false
	}
	for _, n := range events.CreationEventNames() {
		if head.EventName == n {
			return true
		}
	}
	return false
}
