package history

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/regional"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// LookupAPI is the part of the CloudTrail API the finder calls.
type LookupAPI interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

var _ LookupAPI = (*cloudtrail.Client)(nil)

// DescribeAPI is the part of the KMS API the finder calls to narrow the
// lookup to the minutes around the key's creation.
type DescribeAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

var _ DescribeAPI = (*kms.Client)(nil)

// Window is how far around a key's CreationDate the lookup searches: the
// CloudTrail eventTime of the call and the key's CreationDate differ by
// moments, and a replica's ReplicateKey call precedes its creation.
const Window = 15 * time.Minute

// Finder finds creation events. It is safe for concurrent use.
type Finder struct {
	// Lookup returns the CloudTrail client for a region.
	Lookup func(region string) LookupAPI
	// Describe returns the KMS client for a region; nil searches the whole
	// event history of the key, which for a busy key means many pages.
	Describe func(region string) DescribeAPI
}

// NewFinder returns a Finder whose clients are made from cfg on first use,
// one per region; keys are described with the KMS clients of keys.
func NewFinder(cfg aws.Config, keys *awskms.RegionalKMS) *Finder {
	trails := regional.New(func(region string) *cloudtrail.Client {
		return cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
			o.Region = region
			o.Retryer = lookupRetryer()
		})
	})
	return &Finder{
		Lookup:   func(region string) LookupAPI { return trails.Get(region) },
		Describe: func(region string) DescribeAPI { return keys.Client(region) },
	}
}

var _ tagger.CreationFinder = (*Finder)(nil)

// LookupAttempts is how often a LookupEvents call is tried: its quota is two
// requests per second per account and region, so throttling is expected
// when repairs come in bursts; the invocation deadline bounds the retries.
const LookupAttempts = 8

// lookupRetryer is the standard retryer with LookupAttempts attempts and no
// client-side retry quota, like the KMS clients'.
func lookupRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = LookupAttempts
		o.MaxBackoff = 2 * time.Second
		o.RateLimiter = ratelimit.None
	})
}

// FindCreation looks up the events on keyARN in its region and returns the
// decoded CreateKey that created it. For a replica, whose CreateKey in its
// own region is made by AWS for a ReplicateKey call, it looks up the
// ReplicateKey in the primary key's region, which names the real creator.
// The error is a *tagger.NoCreationEventError, matching
// tagger.ErrNoCreationEvent, when neither is in the history.
func (f *Finder) FindCreation(ctx context.Context, keyARN string) (*events.KeyEvent, error) {
	a, err := arn.Parse(keyARN)
	if err != nil {
		return nil, fmt.Errorf("finding creation event of %q: %w", keyARN, err)
	}
	start, end, created, err := f.window(ctx, a.Region, keyARN)
	if err != nil {
		return nil, err
	}
	key, primary, err := f.search(ctx, a.Region, keyARN, keyARN, events.EventNameCreateKey, start, end)
	if err != nil || key != nil {
		return key, err
	}
	if primary != "" {
		p, err := arn.Parse(primary)
		if err != nil {
			return nil, fmt.Errorf("primary key %q of replica %s: %w", primary, keyARN, err)
		}
		// The ReplicateKey is logged in the primary's region, on the primary.
		if key, _, err = f.search(ctx, p.Region, primary, keyARN, events.EventNameReplicateKey, start.Add(-Window), end); err != nil || key != nil {
			return key, err
		}
	}
	return nil, &tagger.NoCreationEventError{KeyARN: keyARN, Created: created}
}

// window returns the time range to search: around the key's CreationDate
// (also returned) when it can be read, else the whole history (zero times).
func (f *Finder) window(ctx context.Context, region, keyARN string) (start, end, created time.Time, err error) {
	if f.Describe == nil {
		return time.Time{}, time.Time{}, time.Time{}, nil
	}
	out, err := f.Describe(region).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	if err != nil {
		return time.Time{}, time.Time{}, time.Time{}, fmt.Errorf("describing key %s: %w", keyARN, err)
	}
	created = aws.ToTime(out.KeyMetadata.CreationDate)
	if created.IsZero() {
		return time.Time{}, time.Time{}, time.Time{}, nil
	}
	return created.Add(-Window), created.Add(Window), created, nil
}

var _ tagger.CreationConfirmer = (*Finder)(nil)

// ConfirmCreation looks up the event eventID in CloudTrail's event history
// (LookupEvents by EventId) and reports whether it is a successful CreateKey
// or ReplicateKey that created keyARN. It looks in the key's region and, for
// a replica, whose ReplicateKey is logged in its primary's region, there
// too.
func (f *Finder) ConfirmCreation(ctx context.Context, keyARN, eventID string) (bool, error) {
	a, err := arn.Parse(keyARN)
	if err != nil {
		return false, fmt.Errorf("confirming creation event %s of %q: %w", eventID, keyARN, err)
	}
	regions := []string{a.Region}
	if f.Describe != nil {
		out, err := f.Describe(a.Region).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
		if err != nil {
			return false, fmt.Errorf("describing key %s: %w", keyARN, err)
		}
		if mr := out.KeyMetadata.MultiRegionConfiguration; mr != nil && mr.PrimaryKey != nil {
			if p := aws.ToString(mr.PrimaryKey.Region); p != "" && p != a.Region {
				regions = append(regions, p)
			}
		}
	}
	for _, region := range regions {
		out, err := f.Lookup(region).LookupEvents(ctx, &cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventId, AttributeValue: aws.String(eventID)}},
		})
		if err != nil {
			return false, fmt.Errorf("looking up event %s in %s: %w", eventID, region, err)
		}
		for _, ev := range out.Events {
			dec, err := events.DecodeRecord([]byte(aws.ToString(ev.CloudTrailEvent)))
			if err == nil && dec.Kind == events.KindTag && dec.Key != nil && dec.Key.KeyARN == keyARN && dec.Key.EventID == eventID {
				return true, nil
			}
		}
	}
	return false, nil
}

// search pages through the events on resource in region between start and
// end (zero: unbounded) and returns the first decodable eventName that tags
// keyARN. primary is set when it saw the AWS-made CreateKey of a replica.
func (f *Finder) search(ctx context.Context, region, resource, keyARN, eventName string, start, end time.Time) (key *events.KeyEvent, primary string, err error) {
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String(resource)}},
	}
	if !start.IsZero() {
		in.StartTime, in.EndTime = aws.Time(start), aws.Time(end)
	}
	pages := cloudtrail.NewLookupEventsPaginator(f.Lookup(region), in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("looking up events of key %s in %s: %w", keyARN, region, err)
		}
		for _, ev := range page.Events {
			if aws.ToString(ev.EventName) != eventName {
				continue
			}
			dec, err := events.DecodeRecord([]byte(aws.ToString(ev.CloudTrailEvent)))
			if err != nil || dec.Key == nil || dec.Key.KeyARN != keyARN {
				continue // not this key's creation, or unreadable: keep looking
			}
			switch dec.Kind {
			case events.KindTag:
				dec.Key.Evidence = tagger.EvidenceHistory
				return dec.Key, "", nil
			case events.KindSkip:
				if dec.Key.PrimaryKeyARN != "" {
					primary = dec.Key.PrimaryKeyARN
				}
			}
		}
	}
	return nil, primary, nil
}
