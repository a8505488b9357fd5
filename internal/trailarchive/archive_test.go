package trailarchive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive/archivetest"
)

const (
	acct   = "111122223333"
	other  = "444455556666"
	org    = "o-a1b2c3d4e5"
	east   = "us-east-1"
	west   = "eu-west-1"
	bucket = "org-trail-logs-111122223333"
)

func keyARN(region, account, id string) string {
	return "arn:aws:kms:" + region + ":" + account + ":key/" + id
}

// recordingS3 is the SDK's S3 client, recording the prefixes listed and
// the objects read.
type recordingS3 struct {
	*s3.Client
	mu     sync.Mutex
	listed []string
	read   []string
}

func (r *recordingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	r.mu.Lock()
	r.listed = append(r.listed, aws.ToString(in.Prefix))
	r.mu.Unlock()
	return r.Client.ListObjectsV2(ctx, in, optFns...)
}

func (r *recordingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	r.mu.Lock()
	r.read = append(r.read, aws.ToString(in.Key))
	r.mu.Unlock()
	return r.Client.GetObject(ctx, in, optFns...)
}

func (r *recordingS3) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listed, r.read = nil, nil
}

func (r *recordingS3) calls() (listed, read []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.listed), slices.Clone(r.read)
}

// startS3 runs moto and makes the bucket in eu-west-1; the client is the
// SDK's, path-style, in the bucket's region.
func startS3(t *testing.T) (*localaws.Moto, *s3.Client) {
	t.Helper()
	ctx := context.Background()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{Account: acct})
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.CreateBucket(ctx, west, bucket); err != nil {
		t.Fatal(err)
	}
	return m, s3.NewFromConfig(m.Config(west), func(o *s3.Options) { o.UsePathStyle = true })
}

func put(t *testing.T, client *s3.Client, f archivetest.LogFile) string {
	t.Helper()
	key, err := archivetest.Put(context.Background(), client, bucket, f)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// decode is the event the record is for the tagger, as the archive gives
// it.
func decode(t *testing.T, record []byte) events.KeyEvent {
	t.Helper()
	dec, err := events.DecodeRecord(record)
	if err != nil || dec.Key == nil {
		t.Fatalf("decoding a record of the test: %v", err)
	}
	k := *dec.Key
	k.Evidence = tagger.EvidenceTrailArchive
	return k
}

// TestFindCreation: log files in the real format in moto's S3, an
// organization trail's (with a prefix) and an account's own (without);
// several records per file, other calls mixed in; keys found only there,
// at day boundaries, delivered late, replicas, and the records not to be
// believed.
func TestFindCreation(t *testing.T) {
	_, client := startS3(t)
	rec := &recordingS3{Client: client}
	alice := audittest.User(acct, "alice")
	deployer := audittest.Role(other, "deployer")
	created := time.Date(2023, 3, 14, 15, 9, 26, 0, time.UTC) // long before the event history's 90 days

	// An organization trail with the prefix "org-trail": account acct in
	// us-east-1, one file with a Decrypt, another key's CreateKey, a failed
	// CreateKey, our key's CreateKey and an S3 call.
	plain := keyARN(east, acct, "1a2b3c4d-0000-4000-8000-000000000001")
	plainRec := audittest.CreateKeyRecord("ev-plain", plain, alice, created)
	otherKey := keyARN(east, acct, "1a2b3c4d-0000-4000-8000-0000000000ff")
	failed := []byte(strings.Replace(string(audittest.CreateKeyRecord("ev-failed", plain, alice, created)),
		`"eventType"`, `"errorCode":"AccessDeniedException","errorMessage":"denied","eventType"`, 1))
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: acct, Region: east, At: created.Add(5 * time.Minute),
		Records: [][]byte{
			archivetest.Record(events.EventSourceKMS, "Decrypt", acct, east, created),
			audittest.CreateKeyRecord("ev-other", otherKey, alice, created.Add(-time.Minute)),
			failed,
			plainRec,
			archivetest.Record("s3.amazonaws.com", "PutObject", acct, east, created),
		}})
	// Files of the days around, outside the window: never read.
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: acct, Region: east, At: created.Add(-26 * time.Hour),
		Records: [][]byte{archivetest.Record(events.EventSourceKMS, "Decrypt", acct, east, created.Add(-26*time.Hour))}})
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: acct, Region: east, At: created.Add(-2 * time.Hour),
		Records: [][]byte{archivetest.Record(events.EventSourceKMS, "Encrypt", acct, east, created.Add(-2*time.Hour))}})

	// Account other, eu-west-1, of the same organization trail: a key
	// created at 23:58 whose file is delivered after midnight, in the next
	// day's folder.
	midnight := time.Date(2023, 6, 30, 23, 58, 10, 0, time.UTC)
	late := keyARN(west, other, "2b3c4d5e-0000-4000-8000-000000000002")
	lateRec := audittest.CreateKeyRecord("ev-midnight", late, deployer, midnight)
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: other, Region: west, At: midnight.Add(7 * time.Minute),
		Records: [][]byte{archivetest.Record(events.EventSourceKMS, "GenerateDataKey", other, west, midnight), lateRec}})

	// A file delivered two hours late.
	slow := keyARN(west, other, "2b3c4d5e-0000-4000-8000-000000000003")
	slowRec := audittest.CreateKeyRecord("ev-slow", slow, deployer, created)
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: other, Region: west, At: created.Add(2 * time.Hour), Records: [][]byte{slowRec}})

	// A multi-Region replica in eu-west-1 of a primary in us-east-1: the
	// CreateKey AWS logs in the replica's region, the ReplicateKey in the
	// primary's, a minute earlier.
	primary := keyARN(east, other, "mrk-0123456789abcdef0123456789abcdef")
	replica := keyARN(west, other, "mrk-0123456789abcdef0123456789abcdef")
	replicateRec := audittest.ReplicateKeyRecord("ev-replicate", primary, replica, deployer, created.Add(-time.Minute))
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: other, Region: west, At: created.Add(4 * time.Minute),
		Records: [][]byte{audittest.ReplicaCreateKeyRecord("ev-replica-by-aws", replica, primary, created)}})
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: other, Region: east, At: created.Add(3 * time.Minute),
		Records: [][]byte{archivetest.Record(events.EventSourceKMS, "DescribeKey", other, east, created), replicateRec}})

	// Two different CreateKey records of one key: one is forged.
	twice := keyARN(east, acct, "3c4d5e6f-0000-4000-8000-000000000004")
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: acct, Region: east, At: created.Add(6 * time.Minute),
		Records: [][]byte{audittest.CreateKeyRecord("ev-twice-1", twice, alice, created)}})
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: acct, Region: east, At: created.Add(11 * time.Minute),
		Records: [][]byte{audittest.CreateKeyRecord("ev-twice-2", twice, audittest.User(acct, "mallory"), created)}})

	// The same record delivered twice (CloudTrail may): one record.
	dup := keyARN(east, acct, "3c4d5e6f-0000-4000-8000-000000000005")
	dupRec := audittest.CreateKeyRecord("ev-dup", dup, alice, created)
	for _, at := range []time.Duration{7 * time.Minute, 12 * time.Minute} {
		put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: acct, Region: east, At: created.Add(at), Records: [][]byte{dupRec}})
	}

	// A CreateKey of account acct's key put into account other's folder:
	// CloudTrail delivers a record to its own account's folder only.
	misplaced := keyARN(east, acct, "4d5e6f70-0000-4000-8000-000000000006")
	put(t, client, archivetest.LogFile{Prefix: "org-trail", Org: org, Account: other, Region: east, At: created.Add(5 * time.Minute),
		Records: [][]byte{audittest.CreateKeyRecord("ev-misplaced", misplaced, alice, created)}})

	// An account's own trail, no prefix, no organization.
	own := keyARN(east, acct, "5e6f7081-0000-4000-8000-000000000007")
	ownRec := audittest.CreateKeyRecord("ev-own", own, alice, created)
	put(t, client, archivetest.LogFile{Account: acct, Region: east, At: created.Add(5 * time.Minute), Records: [][]byte{ownRec}})

	absent := keyARN(east, acct, "6f708192-0000-4000-8000-000000000008")

	ctx := context.Background()
	orgArchive, err := trailarchive.New(rec, bucket, "org-trail/")
	if err != nil {
		t.Fatal(err)
	}
	ownArchive, err := trailarchive.New(rec, bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		archive *trailarchive.Archive
		query   trailarchive.Query
		want    []byte // the record found; nil when none
		wantErr string
		// read are the log files read, by the times in their names
		// relative to the key's creation; nil to leave unchecked.
		read []time.Duration
	}{
		// Every file of the folder within 30 minutes of the creation (those
		// of the keys twice and dup too), none of those before.
		{"CreateKey among other calls", orgArchive, trailarchive.Query{KeyARN: plain, Created: created.Add(2 * time.Second)}, plainRec, "",
			[]time.Duration{5 * time.Minute, 6 * time.Minute, 7 * time.Minute, 11 * time.Minute, 12 * time.Minute}},
		{"a file delivered after midnight", orgArchive, trailarchive.Query{KeyARN: late, Created: midnight}, lateRec, "", nil},
		{"a file delivered two hours late", orgArchive, trailarchive.Query{KeyARN: slow, Created: created}, slowRec, "", nil},
		{"a replica: its ReplicateKey in the primary's region", orgArchive, trailarchive.Query{KeyARN: replica, Created: created}, replicateRec, "", nil},
		{"a replica whose primary is given", orgArchive, trailarchive.Query{KeyARN: replica, Created: created, PrimaryARN: primary}, replicateRec, "", nil},
		{"a record delivered twice", orgArchive, trailarchive.Query{KeyARN: dup, Created: created}, dupRec, "", nil},
		{"two different records", orgArchive, trailarchive.Query{KeyARN: twice, Created: created}, nil, "2 different creation records in the trail archive (ev-twice-1, ev-twice-2)", nil},
		{"a record in another account's folder", orgArchive, trailarchive.Query{KeyARN: misplaced, Created: created}, nil, "no CreateKey or ReplicateKey record of key " + misplaced, nil},
		{"no record", orgArchive, trailarchive.Query{KeyARN: absent, Created: created}, nil, "no CreateKey or ReplicateKey record of key " + absent, nil},
		{"an account's own trail", ownArchive, trailarchive.Query{KeyARN: own, Created: created}, ownRec, "", nil},
		{"not in the organization trail", orgArchive, trailarchive.Query{KeyARN: own, Created: created}, nil, "no CreateKey or ReplicateKey record", nil},
		{"no creation date", orgArchive, trailarchive.Query{KeyARN: plain}, nil, "no creation date", nil},
		{"not a key", orgArchive, trailarchive.Query{KeyARN: "arn:aws:s3:::bucket", Created: created}, nil, "is not a KMS key ARN", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			got, err := tc.archive.FindCreation(ctx, tc.query)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || got != nil {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				var conflict *trailarchive.ConflictError
				if strings.HasPrefix(tc.wantErr, "no CreateKey") && !errors.Is(err, trailarchive.ErrNotFound) {
					t.Errorf("got %T, want it to match ErrNotFound", err)
				}
				if strings.Contains(tc.wantErr, "different") && !errors.As(err, &conflict) {
					t.Errorf("got %T, want a *ConflictError", err)
				}
				return
			case err != nil:
				t.Fatalf("got error %v, want the record", err)
			}
			want := decode(t, tc.want)
			if got.EventID != want.EventID || got.EventName != want.EventName || got.KeyARN != want.KeyARN ||
				!got.EventTime.Equal(want.EventTime) || got.Creator != want.Creator || got.PrimaryKeyARN != want.PrimaryKeyARN ||
				got.Evidence != tagger.EvidenceTrailArchive {
				t.Errorf("got %+v, want %+v with evidence %s", *got, want, tagger.EvidenceTrailArchive)
			}
			if tc.read != nil {
				_, read := rec.calls()
				var at []time.Duration
				for _, k := range read {
					ts := k[strings.LastIndex(k, "_CloudTrail_"):]
					ts = ts[strings.Index(ts[len("_CloudTrail_"):], "_")+len("_CloudTrail_")+1:]
					tm, err := time.Parse("20060102T1504Z", ts[:14])
					if err != nil {
						t.Fatalf("object %s: %v", k, err)
					}
					at = append(at, tm.Sub(created.Truncate(time.Minute)))
				}
				if !slices.Equal(at, tc.read) {
					t.Errorf("got files read at %v after the creation, want only %v", at, tc.read)
				}
			}
		})
	}

	// Time-bounded listing: the key created at 15:09 lists its own day's
	// folder only, never the day before, where a file lies.
	t.Run("only the window's day folders", func(t *testing.T) {
		fresh, err := trailarchive.New(rec, bucket, "org-trail")
		if err != nil {
			t.Fatal(err)
		}
		rec.reset()
		if _, err := fresh.FindCreation(ctx, trailarchive.Query{KeyARN: plain, Created: created}); err != nil {
			t.Fatal(err)
		}
		listed, _ := rec.calls()
		want := []string{"org-trail/AWSLogs/", "org-trail/AWSLogs/" + acct + "/CloudTrail/us-east-1/2023/03/14/", "org-trail/AWSLogs/" + org + "/" + acct + "/CloudTrail/us-east-1/2023/03/14/"}
		if !slices.Equal(listed, want) {
			t.Errorf("got prefixes listed %q, want %q", listed, want)
		}
		// The file of plain (5 records, 3 creations, the failed call
		// rejected), and the four of twice and dup, of one record each.
		if s := fresh.Stats(); s.Files != 5 || s.Records != 9 || s.Creations != 7 || s.Rejected != 1 || s.Lists != 3 {
			t.Errorf("got stats %+v, want 3 lists, 5 files of 9 records, 7 of them creations, 1 rejected", s)
		}
		// A second key of the same file reads nothing again.
		rec.reset()
		if _, err := fresh.FindCreation(ctx, trailarchive.Query{KeyARN: otherKey, Created: created}); err != nil {
			t.Fatal(err)
		}
		if _, read := rec.calls(); len(read) != 0 {
			t.Errorf("got files read again %v, want none: the file's records are kept", read)
		}
	})
}

// TestNew: what New refuses.
func TestNew(t *testing.T) {
	api := &recordingS3{}
	for _, tc := range []struct {
		name, bucket, prefix, want string
	}{
		{"fine", bucket, "org-trail", ""},
		{"no prefix", bucket, "", ""},
		{"upper case bucket", "Trail", "", "is not an S3 bucket name"},
		{"empty bucket", "", "", "is not an S3 bucket name"},
		{"double slash", bucket, "a//b", "is not a trail's S3 key prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := trailarchive.New(api, tc.bucket, tc.prefix)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			case tc.want == "" && tc.prefix != "" && a.Base() != tc.prefix+"/AWSLogs/":
				t.Errorf("got base %q, want %q", a.Base(), tc.prefix+"/AWSLogs/")
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestScanStreams: a file of 40 000 records (about 25 MB uncompressed) is
// decoded as it is read: when the first record is handed over, a small
// part of the file was read.
func TestScanStreams(t *testing.T) {
	const n = 40000
	var raw bytes.Buffer
	raw.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			raw.WriteByte(',')
		}
		raw.Write(archivetest.Record(events.EventSourceKMS, "Decrypt", acct, east, time.Unix(int64(i), 0)))
	}
	raw.WriteString(`]}`)
	size := raw.Len()
	gz := archivetest.Gzip(raw.Bytes())
	cr := &countingReader{r: bytes.NewReader(gz)}
	var atFirst int64
	got, err := trailarchive.Scan(cr, func([]byte) error {
		if atFirst == 0 {
			atFirst = cr.n
		}
		return nil
	})
	if err != nil || got != n {
		t.Fatalf("got %d records, %v; want %d", got, err, n)
	}
	if atFirst > 256<<10 {
		t.Errorf("got %d compressed bytes read at the first record, of %d (%d uncompressed), want a small part", atFirst, len(gz), size)
	}
	t.Logf("first record after %d of %d compressed bytes (%d uncompressed)", atFirst, len(gz), size)
}

// TestScanRejects: what is not a CloudTrail log file.
func TestScanRejects(t *testing.T) {
	long := `{"Records":[{"eventName":"` + strings.Repeat("x", trailarchive.MaxRecordBytes+10) + `"}]}`
	stop := errors.New("stop")
	for _, tc := range []struct {
		name string
		body []byte
		fn   func([]byte) error
		want string
		n    int
	}{
		{"not gzip", []byte(`{"Records":[]}`), nil, "not a gzip file", 0},
		{"not an object", archivetest.Gzip([]byte(`[1,2]`)), nil, "not a CloudTrail log file", 0},
		{"truncated", archivetest.Gzip([]byte(`{"Records":[{"a":1},{"b"`)), nil, "record 2", 1},
		{"a record too long", archivetest.Gzip([]byte(long)), nil, "longer than the most CloudTrail writes", 0},
		{"the callback stops it", archivetest.Gzip([]byte(`{"Records":[{"a":1},{"b":2}]}`)), func([]byte) error { return stop }, "stop", 1},
		{"empty", archivetest.Gzip([]byte(`{"Records":[]}`)), nil, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := tc.fn
			if fn == nil {
				fn = func([]byte) error { return nil }
			}
			n, err := trailarchive.Scan(bytes.NewReader(tc.body), fn)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if n != tc.n {
				t.Errorf("got %d records, want %d", n, tc.n)
			}
		})
	}
}

// TestNewS3Client: the client of a bucket in eu-west-1 made from a
// configuration in us-east-1 reads it, in the bucket's region.
func TestNewS3Client(t *testing.T) {
	m, client := startS3(t)
	ctx := context.Background()
	key := put(t, client, archivetest.LogFile{Account: acct, Region: east, At: time.Now(), Records: [][]byte{[]byte(`{}`)}})
	c, err := trailarchive.NewS3Client(ctx, m.Config(east), bucket)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Options().Region; got != west {
		t.Errorf("got region %s, want the bucket's, %s", got, west)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Errorf("reading %s: %v", key, err)
	}
	if _, err := trailarchive.NewS3Client(ctx, m.Config(east), "no-such-bucket-"+fmt.Sprint(time.Now().UnixNano())); err == nil {
		t.Error("got a client of a bucket that does not exist, want an error")
	}
}
