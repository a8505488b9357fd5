package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// S3API is the part of the S3 API an Archive calls: ListObjectsV2 on the
// day folders of a search, GetObject on the log files in its window.
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// The search window around a key's CreationDate. The record's eventTime is
// within tagger.CreationTolerance of it (a ReplicateKey precedes its
// replica's creation by up to ReplicaLead), and CloudTrail delivers a log
// file about 5 minutes after the calls it holds, not guaranteed: the file
// names a time at or after its records'. A search reads the files named
// from Window before the creation to Window after it first, and only when
// the key's record is not among them the files up to DeliveryLag after.
const (
	Window      = 30 * time.Minute
	DeliveryLag = 3 * time.Hour
	// ReplicaLead is how long before a replica's creation its ReplicateKey
	// may be logged (history.Window, as the event history search allows).
	ReplicaLead = 15 * time.Minute
)

// MaxRecordBytes bounds one record of a log file as the decoder reads it:
// CloudTrail's records are at most 256 KB since event version 1.05, so a
// longer one is not CloudTrail's and ends the file's read with an error
// rather than with the memory it would take.
const MaxRecordBytes = 1 << 20

// logsFolder is the folder CloudTrail delivers to under the trail's
// prefix.
const logsFolder = "AWSLogs/"

// fileName is the name of a CloudTrail log file in a day folder:
// ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz.
var fileName = regexp.MustCompile(`^(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_([A-Za-z0-9]+)\.json\.gz$`)

// fileTimeLayout is the time in a log file's name.
const fileTimeLayout = "20060102T1504Z"

// orgFolder is the folder of an organization trail's accounts.
var orgFolder = regexp.MustCompile(`^o-[a-z0-9]{10,32}/$`)

// bucketName is what S3 accepts as a general purpose bucket name.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ErrNotFound matches the error of a search that found no creation record.
var ErrNotFound = errors.New("no creation record in the trail archive")

// NotFoundError is a search that found no creation record of the key.
type NotFoundError struct {
	KeyARN string
	// From and To bound the log files searched, by the times in their
	// names; Files is how many were read.
	From, To time.Time
	Files    int
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no %s record of key %s in the trail archive's log files from %s to %s (%d files read)",
		strings.Join(events.CreationEventNames(), " or "), e.KeyARN, e.From.Format(time.RFC3339), e.To.Format(time.RFC3339), e.Files)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ConflictError is a key with more than one creation record in the
// archive: one of them is not CloudTrail's, and which cannot be told, so
// neither is used.
type ConflictError struct {
	KeyARN   string
	EventIDs []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("key %s has %d different creation records in the trail archive (%s): not attributed from any of them",
		e.KeyARN, len(e.EventIDs), strings.Join(e.EventIDs, ", "))
}

// Query is one key to find the creation record of.
type Query struct {
	// KeyARN is the key.
	KeyARN string
	// Created is its CreationDate, as KMS's DescribeKey gives it; it bounds
	// the search. Required.
	Created time.Time
	// PrimaryARN is the primary key of a multi-Region replica, whose
	// ReplicateKey is logged in the primary's region; empty otherwise.
	PrimaryARN string
}

// Stats count what an Archive read.
type Stats struct {
	// Lists is the number of ListObjectsV2 requests, Files the log files
	// read (GetObject), Bytes their compressed size, Records the records
	// they held and Creations the CreateKey and ReplicateKey records among
	// them.
	Lists, Files int
	Bytes        int64
	Records      int
	Creations    int
	// Rejected counts the creation records not used: not decodable, or
	// delivered to the folder of another account or region.
	Rejected int
}

// Archive is a trail's log files in one S3 bucket. It is safe for
// concurrent use; the creation records of the files it read are kept for
// its lifetime, so one Archive serves a whole run.
type Archive struct {
	s3     S3API
	bucket string
	base   string // PREFIX/AWSLogs/

	rootsMu sync.Mutex
	roots   []string // base and base + o-ORGID/ for each organization folder

	mu    sync.Mutex
	files map[string]*fileEntry
	stats Stats
}

// fileEntry is one log file's creation records, read once.
type fileEntry struct {
	done  chan struct{}
	recs  []creation
	err   error
	bytes int64
}

// creation is a creation record of a file, decoded.
type creation struct {
	kind events.Kind
	key  events.KeyEvent
}

// New returns the archive of the trail that delivers to bucket under
// prefix (the trail's S3KeyPrefix, empty for none), read with api.
func New(api S3API, bucket, prefix string) (*Archive, error) {
	if api == nil {
		return nil, errors.New("trail archive: no S3 client")
	}
	if !bucketName.MatchString(bucket) || strings.Contains(bucket, "..") {
		return nil, fmt.Errorf("trail archive: %q is not an S3 bucket name", bucket)
	}
	prefix = strings.Trim(prefix, "/")
	if strings.Contains(prefix, "//") || len(prefix) > 200 {
		return nil, fmt.Errorf("trail archive: %q is not a trail's S3 key prefix", prefix)
	}
	base := logsFolder
	if prefix != "" {
		base = prefix + "/" + logsFolder
	}
	return &Archive{s3: api, bucket: bucket, base: base, files: make(map[string]*fileEntry)}, nil
}

// Bucket returns the archive's bucket; Base the folder CloudTrail delivers
// to in it, PREFIX/AWSLogs/.
func (a *Archive) Bucket() string { return a.bucket }

// Base returns the folder CloudTrail delivers to, PREFIX/AWSLogs/.
func (a *Archive) Base() string { return a.base }

// Stats returns what the archive read so far.
func (a *Archive) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// FindCreation returns the key's creation record from the archive, with
// Evidence tagger.EvidenceTrailArchive: its CreateKey, or for a replica
// the ReplicateKey in its primary's region (where the CreateKey AWS logs
// in the replica's region, or q.PrimaryARN, names the primary). The error
// matches ErrNotFound when there is none, is a *ConflictError when the
// archive holds two different ones, and is S3's when the archive could not
// be read. optFns are added to every S3 call (a rate limit, for one).
func (a *Archive) FindCreation(ctx context.Context, q Query, optFns ...func(*s3.Options)) (*events.KeyEvent, error) {
	key, err := arn.Parse(q.KeyARN)
	if err != nil || key.Service != "kms" || !strings.HasPrefix(key.Resource, "key/") {
		return nil, fmt.Errorf("trail archive: %q is not a KMS key ARN", q.KeyARN)
	}
	if q.Created.IsZero() {
		return nil, fmt.Errorf("trail archive: no creation date of key %s to bound the search", q.KeyARN)
	}
	roots, err := a.orgRoots(ctx, optFns)
	if err != nil {
		return nil, err
	}
	created := q.Created.UTC()
	files := 0
	primary := q.PrimaryARN
	// The files around the creation first, then the late deliveries.
	for _, w := range [][2]time.Time{
		{created.Add(-Window), created.Add(Window)},
		{created.Add(Window), created.Add(DeliveryLag)},
	} {
		found, named, n, err := a.search(ctx, roots, key.AccountID, key.Region, q.KeyARN, events.EventNameCreateKey, w[0], w[1], optFns)
		files += n
		if err != nil || found != nil {
			return found, err
		}
		if primary == "" {
			primary = named
		}
	}
	if primary != "" {
		p, err := arn.Parse(primary)
		if err != nil || p.AccountID != key.AccountID {
			return nil, fmt.Errorf("trail archive: primary key %q of replica %s is not a key of its account", primary, q.KeyARN)
		}
		for _, w := range [][2]time.Time{
			{created.Add(-Window - ReplicaLead), created.Add(Window)},
			{created.Add(Window), created.Add(DeliveryLag)},
		} {
			found, _, n, err := a.search(ctx, roots, p.AccountID, p.Region, q.KeyARN, events.EventNameReplicateKey, w[0], w[1], optFns)
			files += n
			if err != nil || found != nil {
				return found, err
			}
		}
	}
	return nil, &NotFoundError{KeyARN: q.KeyARN, From: created.Add(-Window), To: created.Add(DeliveryLag), Files: files}
}

// search reads the log files of account and region named from from to to
// and returns the one eventName record that creates keyARN, or none with
// the primary key an AWS-logged CreateKey of the replica names, and the
// number of files read.
func (a *Archive) search(ctx context.Context, roots []string, account, region, keyARN, eventName string, from, to time.Time, optFns []func(*s3.Options)) (*events.KeyEvent, string, int, error) {
	var (
		found   []events.KeyEvent
		primary string
		files   int
	)
	for _, root := range roots {
		for day := from.Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
			folder := root + account + "/CloudTrail/" + region + "/" + day.Format("2006/01/02") + "/"
			start := from
			if day.After(start) {
				start = day
			}
			in := &s3.ListObjectsV2Input{
				Bucket:     aws.String(a.bucket),
				Prefix:     aws.String(folder),
				StartAfter: aws.String(folder + account + "_CloudTrail_" + region + "_" + start.Format(fileTimeLayout)),
			}
			pages := s3.NewListObjectsV2Paginator(a.s3, in)
		listing:
			for pages.HasMorePages() {
				a.count(func(s *Stats) { s.Lists++ })
				page, err := pages.NextPage(ctx, optFns...)
				if err != nil {
					return nil, "", files, fmt.Errorf("trail archive: listing s3://%s/%s: %w", a.bucket, folder, err)
				}
				for _, obj := range page.Contents {
					name := strings.TrimPrefix(aws.ToString(obj.Key), folder)
					m := fileName.FindStringSubmatch(name)
					if m == nil || m[1] != account || m[2] != region {
						continue // not a log file of this folder
					}
					at, err := time.Parse(fileTimeLayout, m[3])
					if err != nil || at.Before(from) {
						continue
					}
					if at.After(to) {
						break listing // names sort by their time: the rest are later
					}
					recs, err := a.file(ctx, aws.ToString(obj.Key), account, region, optFns)
					files++
					if err != nil {
						return nil, "", files, err
					}
					for _, c := range recs {
						switch {
						case c.key.KeyARN != keyARN || c.key.EventName != eventName:
						case c.kind == events.KindTag:
							if !slices.ContainsFunc(found, func(k events.KeyEvent) bool { return k.EventID == c.key.EventID }) {
								found = append(found, c.key) // CloudTrail may deliver a record twice
							}
						case c.kind == events.KindSkip && c.key.PrimaryKeyARN != "":
							primary = c.key.PrimaryKeyARN
						}
					}
				}
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, primary, files, nil
	case 1:
		ev := found[0]
		ev.Evidence = tagger.EvidenceTrailArchive
		return &ev, "", files, nil
	}
	ids := make([]string, len(found))
	for i, k := range found {
		ids[i] = k.EventID
	}
	slices.Sort(ids)
	return nil, "", files, &ConflictError{KeyARN: keyARN, EventIDs: ids}
}

// orgRoots returns the folders accounts are delivered to: PREFIX/AWSLogs/
// for an account's own trail, and PREFIX/AWSLogs/o-ORGID/ for each
// organization trail, found with one delimited listing and kept once it
// succeeded.
func (a *Archive) orgRoots(ctx context.Context, optFns []func(*s3.Options)) ([]string, error) {
	a.rootsMu.Lock()
	defer a.rootsMu.Unlock()
	if a.roots != nil {
		return a.roots, nil
	}
	roots := []string{a.base}
	pages := s3.NewListObjectsV2Paginator(a.s3, &s3.ListObjectsV2Input{Bucket: aws.String(a.bucket), Prefix: aws.String(a.base), Delimiter: aws.String("/")})
	for pages.HasMorePages() {
		a.count(func(s *Stats) { s.Lists++ })
		page, err := pages.NextPage(ctx, optFns...)
		if err != nil {
			return nil, fmt.Errorf("trail archive: listing s3://%s/%s: %w", a.bucket, a.base, err)
		}
		for _, p := range page.CommonPrefixes {
			if sub := strings.TrimPrefix(aws.ToString(p.Prefix), a.base); orgFolder.MatchString(sub) {
				roots = append(roots, a.base+sub)
			}
		}
	}
	a.roots = roots
	return roots, nil
}

// file returns the creation records of the log file at key, delivered to
// the folder of account and region, reading it on first use. Concurrent
// callers of one file share its read; a failed read is not kept.
func (a *Archive) file(ctx context.Context, key, account, region string, optFns []func(*s3.Options)) ([]creation, error) {
	a.mu.Lock()
	e, ok := a.files[key]
	if !ok {
		e = &fileEntry{done: make(chan struct{})}
		a.files[key] = e
	}
	a.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			if e.err == nil {
				return e.recs, nil
			}
			return a.file(ctx, key, account, region, optFns) // the failed read was dropped: try again
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.recs, e.bytes, e.err = a.read(ctx, key, account, region, optFns)
	a.mu.Lock()
	if e.err != nil {
		delete(a.files, key)
	} else {
		a.stats.Files++
		a.stats.Bytes += e.bytes
	}
	a.mu.Unlock()
	close(e.done)
	return e.recs, e.err
}

// read streams one log file and keeps its creation records.
func (a *Archive) read(ctx context.Context, key, account, region string, optFns []func(*s3.Options)) ([]creation, int64, error) {
	out, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.bucket), Key: aws.String(key)}, optFns...)
	if err != nil {
		return nil, 0, fmt.Errorf("trail archive: reading s3://%s/%s: %w", a.bucket, key, err)
	}
	defer out.Body.Close()
	var recs []creation
	records, err := Scan(out.Body, func(raw []byte) error {
		if !isCreation(raw) {
			return nil
		}
		a.count(func(s *Stats) { s.Creations++ })
		dec, err := events.DecodeRecord(raw)
		if err != nil || dec.Key == nil || (dec.Kind != events.KindTag && dec.Kind != events.KindSkip) {
			a.count(func(s *Stats) { s.Rejected++ })
			return nil // not a usable creation record: a failed call, or malformed
		}
		if dec.Key.Account != account || dec.Key.EventRegion != region {
			a.count(func(s *Stats) { s.Rejected++ })
			return nil // delivered to another account's or region's folder: not CloudTrail's
		}
		recs = append(recs, creation{kind: dec.Kind, key: *dec.Key})
		return nil
	})
	a.count(func(s *Stats) { s.Records += records })
	if err != nil {
		return nil, 0, fmt.Errorf("trail archive: reading s3://%s/%s: %w", a.bucket, key, err)
	}
	return recs, aws.ToInt64(out.ContentLength), nil
}

func (a *Archive) count(f func(*Stats)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(&a.stats)
}
