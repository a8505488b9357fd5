package backfill_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/backfill"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	account = "111122223333"
	east    = "us-east-1"
	west    = "eu-west-1"
	alice   = "arn:aws:iam::111122223333:user/alice"
	// Seeded multi-Region key: the primary in us-east-1, its replica in
	// eu-west-1 (local-kms has no ReplicateKey; seeds give both ends).
	mrkID = "mrk-1f2e3d4c5b6a47988796a5b4c3d2e1f0"
)

// noCreationEvent is what the reason of a key without a creation event
// begins with.
var noCreationEvent = "no " + strings.Join(events.CreationEventNames(), " or ") + " event"

// stack is local-kms in two regions and the CloudTrail stand-in, with the
// clients backfill.NewClients makes from the environment, as the CLI does.
type stack struct {
	*localawstest.Stack
	policy  *tagger.Policy
	cfg     config.Config
	clients backfill.ClientsFunc

	mu     sync.Mutex
	tagged []tagCall // every TagResource request, in order
}

// tagCall is one TagResource request the KMS router saw.
type tagCall struct {
	at     time.Time
	region string
	keyID  string
}

// testLookupRate is the LookupEvents quota of the stand-in in most tests,
// scaled up from CloudTrail's 2 per second to keep the tests short.
const testLookupRate = 20

func startStack(t testing.TB, trailOpts localaws.CloudTrailOptions, extraEnv map[string]string) *stack {
	t.Helper()
	ctx := context.Background()
	trailOpts.Regions = []string{east, west}
	if trailOpts.LookupEventsRate == 0 {
		trailOpts.LookupEventsRate = testLookupRate
	}
	env := map[string]string{
		"STATIC_TAGS": "ManagedBy=kms-autotagger",
		"MAX_BACKOFF": "50ms",
	}
	maps.Copy(env, extraEnv)
	st := localawstest.Start(t, localawstest.Options{
		Regions:    []string{east, west},
		Seeds:      map[string][]localaws.SeedKey{east: {{KeyID: mrkID}}, west: {{KeyID: mrkID}}},
		NoSQS:      true,
		CloudTrail: &trailOpts,
		Env:        env,
	})
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := cfg.Policy()
	if err != nil {
		t.Fatal(err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{Stack: st, policy: policy, cfg: cfg, clients: backfill.NewClients(func(string) (aws.Config, error) { return awsCfg, nil }, cfg.Retry)}
	st.KMS.Router().SetIntercept(func(_ http.ResponseWriter, r *http.Request, region, target string) bool {
		if target != localaws.KMSTarget("TagResource") {
			return false
		}
		var in struct {
			KeyID string `json:"KeyId"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &in)
		s.mu.Lock()
		s.tagged = append(s.tagged, tagCall{at: time.Now(), region: region, keyID: in.KeyID})
		s.mu.Unlock()
		return false
	})
	return s
}

// resetCalls forgets the requests made so far (by the test's own setup).
func (s *stack) resetCalls() {
	s.KMS.Router().ResetCounts()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tagged = nil
}

// tagCalls returns the TagResource requests so far.
func (s *stack) tagCalls() []tagCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tagged)
}

// taggedKeys returns the sorted key ARNs TagResource was called for.
func (s *stack) taggedKeys() []string {
	var keys []string
	for _, c := range s.tagCalls() {
		keys = append(keys, c.keyID)
	}
	slices.Sort(keys)
	return keys
}

func (s *stack) addEvent(t testing.TB, region string, record []byte) {
	t.Helper()
	if err := s.CloudTrail.AddEvent(region, record); err != nil {
		t.Fatal(err)
	}
}

// backfiller returns a Backfiller over the stack with the test rates unless
// opts sets its own.
func (s *stack) backfiller(t testing.TB, opts backfill.Options) *backfill.Backfiller {
	t.Helper()
	if opts.Regions == nil {
		opts.Regions = []string{east, west}
	}
	if opts.Accounts == nil {
		opts.Accounts = []string{account}
	}
	if opts.LookupRate == 0 {
		opts.LookupRate = testLookupRate
	}
	if opts.TagRate == 0 {
		opts.TagRate = 50
	}
	if opts.CreatedAtKey == "" {
		opts.CreatedAtKey = s.cfg.TagKeyPrefix + s.cfg.Names.CreatedAt
	}
	b, err := backfill.New(s.policy, s.clients, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keyIDOf(keyARN string) string { return keyARN[strings.LastIndex(keyARN, "/")+1:] }

// createKeyRecord is the CloudTrail record of alice's CreateKey of keyARN
// at the time given, as LookupEvents returns it in CloudTrailEvent.
func createKeyRecord(eventID, keyARN string, at time.Time, keyManager string) []byte {
	region := localawstest.RegionOf(keyARN)
	return mustJSON(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": alice, "accountId": account, "userName": "alice"},
		"eventTime":    at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": events.EventNameCreateKey, "awsRegion": region,
		"sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2.15.0",
		"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS"},
		"responseElements": map[string]any{"keyMetadata": map[string]any{
			"AWSAccountId": account, "keyId": keyIDOf(keyARN), "arn": keyARN, "creationDate": "Jan 9, 2024, 6:52:34 PM",
			"enabled": true, "keyUsage": "ENCRYPT_DECRYPT", "keyState": "Enabled", "origin": "AWS_KMS", "keyManager": keyManager,
			"keySpec": "SYMMETRIC_DEFAULT", "multiRegion": false,
		}},
		"requestID": "e0b4ad8e-6a1f-4a55-9b1b-7b0c1c8e9f10", "eventID": eventID, "readOnly": false,
		"resources": []map[string]string{{"accountId": account, "type": "AWS::KMS::Key", "ARN": keyARN}},
		"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": account, "eventCategory": "Management",
	})
}

// failedCreateKeyRecord is a CreateKey call that failed.
func failedCreateKeyRecord(eventID string, at time.Time) []byte {
	return mustJSON(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "IAMUser", "arn": alice, "accountId": account, "userName": "alice"},
		"eventTime":    at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": events.EventNameCreateKey, "awsRegion": east,
		"errorCode": "AccessDenied", "errorMessage": "not allowed", "requestParameters": map[string]any{}, "responseElements": nil,
		"eventID": eventID, "eventType": "AwsApiCall", "recipientAccountId": account,
	})
}

// replicateKeyRecords are the two records of alice replicating the primary
// key to the replica: ReplicateKey in the primary's region, and the
// CreateKey AWS logs in the replica's region.
func replicateKeyRecords(eventID, awsEventID, primaryARN, replicaARN string, at time.Time) (replicate, created []byte) {
	md := map[string]any{
		"AWSAccountId": account, "keyId": keyIDOf(replicaARN), "arn": replicaARN, "keyState": "Enabled", "origin": "AWS_KMS",
		"keyManager": "CUSTOMER", "multiRegion": true,
		"multiRegionConfiguration": map[string]any{
			"multiRegionKeyType": "REPLICA",
			"primaryKey":         map[string]any{"arn": primaryARN, "region": localawstest.RegionOf(primaryARN)},
		},
	}
	replicate = mustJSON(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "IAMUser", "arn": alice, "accountId": account, "userName": "alice"},
		"eventTime":    at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": events.EventNameReplicateKey,
		"awsRegion":         localawstest.RegionOf(primaryARN),
		"requestParameters": map[string]any{"keyId": primaryARN, "replicaRegion": localawstest.RegionOf(replicaARN)},
		"responseElements":  map[string]any{"replicaKeyMetadata": md},
		"eventID":           eventID, "eventType": "AwsApiCall", "recipientAccountId": account,
		"resources": []map[string]string{
			{"accountId": account, "type": "AWS::KMS::Key", "ARN": primaryARN},
			{"accountId": account, "type": "AWS::KMS::Key", "ARN": replicaARN},
		},
	})
	created = mustJSON(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "AWSService", "invokedBy": "kms.amazonaws.com"},
		"eventTime":    at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": events.EventNameCreateKey,
		"awsRegion":         localawstest.RegionOf(replicaARN),
		"requestParameters": map[string]any{"multiRegion": true},
		"responseElements":  map[string]any{"keyMetadata": md},
		"eventID":           awsEventID, "eventType": "AwsServiceEvent", "recipientAccountId": account,
		"resources": []map[string]string{{"accountId": account, "type": "AWS::KMS::Key", "ARN": replicaARN}},
	})
	return replicate, created
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// governanceTags are the tags the policy of the tests (the default
// settings, STATIC_TAGS ManagedBy=kms-autotagger) gives a key alice
// created with the event given, found in CloudTrail's event history: among
// them CreatedBy alice, CreatedAt at, CreationEventId eventID and
// CreatedByEvidence history, as checked below.
func governanceTags(eventID string, at time.Time) map[string]string {
	cfg, err := config.FromEnv(func(k string) string {
		if k == config.EnvStaticTags {
			return "ManagedBy=kms-autotagger"
		}
		return ""
	})
	if err != nil {
		panic(err)
	}
	policy, err := cfg.Policy()
	if err != nil {
		panic(err)
	}
	dec, err := events.DecodeRecord(createKeyRecord(eventID, "arn:aws:kms:us-east-1:"+account+":key/00000000-0000-4000-8000-000000000000", at, "CUSTOMER"))
	if err != nil {
		panic(err)
	}
	dec.Key.Evidence = tagger.EvidenceHistory // the backfill reads CloudTrail's event history
	tags := tagMap(policy.Plan(dec.Key, nil).Tags)
	for k, v := range map[string]string{"CreatedBy": alice, "CreatedAt": at.UTC().Format(time.RFC3339), "CreationEventId": eventID,
		"CreatedByEvidence": tagger.EvidenceHistory, "ManagedBy": "kms-autotagger"} {
		if tags[k] != v {
			panic(fmt.Sprintf("the policy gives %s=%q, want %q", k, tags[k], v))
		}
	}
	return tags
}

// rowsByKey indexes rows by key ARN (by event ID for rows without a key).
func rowsByKey(rows []backfill.Row) map[string]backfill.Row {
	m := make(map[string]backfill.Row, len(rows))
	for _, r := range rows {
		k := r.KeyARN
		if k == "" {
			k = "event:" + r.EventID
		}
		m[k] = r
	}
	return m
}

func tagMap(tags []tagger.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

func TestBackfillTagsKeysOfEveryRegion(t *testing.T) {
	s := startStack(t, localaws.CloudTrailOptions{}, nil)
	now := time.Now().UTC().Truncate(time.Second)
	hoursAgo := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }

	plain := s.CreateKey(t, east)
	s.addEvent(t, east, createKeyRecord("ev-plain", plain, hoursAgo(30), "CUSTOMER"))

	done := s.CreateKey(t, east) // tagged by the Lambda already
	s.addEvent(t, east, createKeyRecord("ev-done", done, hoursAgo(29), "CUSTOMER"))
	s.TagKey(t, done, governanceTags("ev-done", hoursAgo(29)))

	spoofed := s.CreateKey(t, east) // carries a wrong CreatedBy and a tag of its own
	s.addEvent(t, east, createKeyRecord("ev-spoofed", spoofed, hoursAgo(28), "CUSTOMER"))
	s.TagKey(t, spoofed, map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/mallory", "team": "payments"})

	twice := s.CreateKey(t, east) // two events: the newest wins
	s.addEvent(t, east, createKeyRecord("ev-twice-old", twice, hoursAgo(50), "CUSTOMER"))
	s.addEvent(t, east, createKeyRecord("ev-twice-new", twice, hoursAgo(5), "CUSTOMER"))

	pending := s.CreateKey(t, east)
	s.addEvent(t, east, createKeyRecord("ev-pending", pending, hoursAgo(27), "CUSTOMER"))
	if _, err := s.KMS.Client(east).ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(pending), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}

	gone := s.KMS.KeyARN(east, "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a") // never existed here
	s.addEvent(t, east, createKeyRecord("ev-gone", gone, hoursAgo(26), "CUSTOMER"))

	awsManaged := s.KMS.KeyARN(east, "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")
	s.addEvent(t, east, createKeyRecord("ev-aws", awsManaged, hoursAgo(25), "AWS"))

	s.addEvent(t, east, failedCreateKeyRecord("ev-failed-call", hoursAgo(24)))
	s.addEvent(t, east, []byte(`{"eventVersion":"1.09","eventSource":"kms.amazonaws.com","eventName":"`+events.EventNameCreateKey+`","awsRegion":"us-east-1","eventID":"ev-malformed","eventTime":"`+hoursAgo(23).Format(time.RFC3339)+`","responseElements":{"keyMetadata":{"keyId":"x"}}}`))

	westKey := s.CreateKey(t, west)
	s.addEvent(t, west, createKeyRecord("ev-west", westKey, hoursAgo(20), "CUSTOMER"))

	primary, replica := s.KMS.KeyARN(east, mrkID), s.KMS.KeyARN(west, mrkID)
	s.addEvent(t, east, createKeyRecord("ev-primary", primary, hoursAgo(12), "CUSTOMER"))
	rep, awsCreated := replicateKeyRecords("ev-replicate", "ev-replica-created", primary, replica, hoursAgo(11))
	s.addEvent(t, east, rep)
	s.addEvent(t, west, awsCreated)

	unknown := s.CreateKey(t, west) // no event: created before the history

	s.resetCalls()
	rep1, err := s.backfiller(t, backfill.Options{}).Run(context.Background())
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	rows := rowsByKey(rep1.Rows)

	replicaTags := governanceTags("ev-replicate", hoursAgo(11))
	replicaTags["ReplicaOf"] = primary
	wantTags := map[string]map[string]string{
		plain:   governanceTags("ev-plain", hoursAgo(30)),
		done:    governanceTags("ev-done", hoursAgo(29)),
		spoofed: merge(governanceTags("ev-spoofed", hoursAgo(28)), map[string]string{"team": "payments"}),
		twice:   governanceTags("ev-twice-new", hoursAgo(5)),
		westKey: governanceTags("ev-west", hoursAgo(20)),
		primary: governanceTags("ev-primary", hoursAgo(12)),
		replica: replicaTags,
		pending: {},
		unknown: {},
	}
	for key, want := range wantTags {
		if got := s.Tags(t, key); !maps.Equal(got, want) {
			t.Errorf("key %s: got tags %v, want %v", key, got, want)
		}
	}

	tests := []struct {
		key, action, eventID, reason, code string
	}{
		{plain, "tagged", "ev-plain", "", ""},
		{done, "up-to-date", "ev-done", "", ""},
		{spoofed, "tagged", "ev-spoofed", "", ""},
		{twice, "tagged", "ev-twice-new", "", ""},
		{pending, "pending-deletion", "ev-pending", "PendingDeletion", ""},
		{gone, "not-found", "ev-gone", "NotFoundException", ""},
		{awsManaged, "skipped", "ev-aws", "AWS managed key", ""},
		{"event:ev-malformed", "failed", "ev-malformed", "malformed CreateKey event", "MalformedEvent"},
		{westKey, "tagged", "ev-west", "", ""},
		{primary, "tagged", "ev-primary", "", ""},
		{replica, "tagged", "ev-replicate", "", ""},
		{unknown, "no-creation-event", "", noCreationEvent, ""},
	}
	for _, tt := range tests {
		row, ok := rows[tt.key]
		if !ok {
			t.Errorf("no row for %s; rows: %+v", tt.key, rep1.Rows)
			continue
		}
		if string(row.Action) != tt.action || row.EventID != tt.eventID || !strings.Contains(row.Reason, tt.reason) || row.ErrorCode != tt.code {
			t.Errorf("row of %s: got %+v, want action %s, event %q, reason containing %q, error code %q", tt.key, row, tt.action, tt.eventID, tt.reason, tt.code)
		}
	}
	if got, want := len(rep1.Rows), len(tests); got != want {
		t.Errorf("got %d rows, want %d: %+v", got, want, rep1.Rows)
	}
	if got, n := rows[spoofed], len(governanceTags("ev-spoofed", hoursAgo(28))); !maps.Equal(tagMap(got.Previous), map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/mallory"}) || len(got.Tags) != n {
		t.Errorf("row of the spoofed key: got tags %v previous %v, want the %d governance tags replacing mallory", got.Tags, got.Previous, n)
	}
	if got := rows[replica].Region; got != west {
		t.Errorf("replica row: got region %s, want %s, where the replica lives", got, west)
	}

	// TagResource only for the keys that needed it; never for the key
	// already tagged, the pending one or the missing one.
	wantCalls := []string{plain, spoofed, twice, westKey, primary, replica}
	slices.Sort(wantCalls)
	if got := s.taggedKeys(); !slices.Equal(got, wantCalls) {
		t.Errorf("got TagResource for %v, want %v", got, wantCalls)
	}
	if got := s.KMS.Router().Count(localaws.AnyRegion, localaws.KMSTarget("TagResource")); got != len(wantCalls) {
		t.Errorf("router counted %d TagResource, want %d", got, len(wantCalls))
	}

	sum := rep1.Summary
	wantActions := map[backfill.Action]int{"tagged": 6, "up-to-date": 1, "pending-deletion": 1, "not-found": 1, "skipped": 1, "failed": 1, "no-creation-event": 1}
	if !maps.Equal(sum.Actions, wantActions) {
		t.Errorf("got actions %v, want %v", sum.Actions, wantActions)
	}
	// 12 events: plain, done, spoofed, twice x2, pending, gone, aws, failed
	// call, malformed, primary, replicate in us-east-1; west and the
	// AWS-logged replica CreateKey in eu-west-1: 14.
	if sum.Events != 14 || sum.IgnoredEvents != 1 || sum.SupersededEvents != 2 || sum.NoCreationEvent != 1 {
		t.Errorf("got events %d, ignored %d, superseded %d, no creation event %d; want 14, 1, 2, 1", sum.Events, sum.IgnoredEvents, sum.SupersededEvents, sum.NoCreationEvent)
	}
	// One LookupEvents per creation event name and region: every page holds all the events of its name.
	lookups := 2 * len(events.CreationEventNames())
	if sum.Requests[backfill.OpLookupEvents] != lookups || sum.Requests[backfill.OpTagResource] != 6 || sum.Requests[backfill.OpListKeys] != 2 {
		t.Errorf("got requests %v, want %d LookupEvents (a name x 2 regions), 6 TagResource, 2 ListKeys", sum.Requests, lookups)
	}
	if sum.Interrupted || sum.DryRun || len(sum.Errors) > 0 {
		t.Errorf("got summary %+v, want a complete run without errors", sum)
	}
	if !sum.Since.Equal(sum.Until.Add(-backfill.MaxHistory)) {
		t.Errorf("got since %v until %v, want 90 days", sum.Since, sum.Until)
	}

	// Running again changes nothing and calls TagResource for nothing.
	before := len(s.tagCalls())
	rep2, err := s.backfiller(t, backfill.Options{}).Run(context.Background())
	if err != nil {
		t.Fatalf("second backfill: %v", err)
	}
	if got := len(s.tagCalls()) - before; got != 0 {
		t.Errorf("second run: got %d TagResource calls, want 0", got)
	}
	if got := rep2.Summary.Actions["up-to-date"]; got != 7 {
		t.Errorf("second run: got %d up-to-date, want 7 (the 6 tagged and the one tagged before): %v", got, rep2.Summary.Actions)
	}
}

func merge(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func TestBackfillDryRunChangesNothing(t *testing.T) {
	s := startStack(t, localaws.CloudTrailOptions{}, nil)
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	k1, k2 := s.CreateKey(t, east), s.CreateKey(t, west)
	s.addEvent(t, east, createKeyRecord("ev-1", k1, at, "CUSTOMER"))
	s.addEvent(t, west, createKeyRecord("ev-2", k2, at, "CUSTOMER"))
	s.TagKey(t, k2, map[string]string{"CreatedAt": "1999-01-01T00:00:00Z"})
	unknown := s.CreateKey(t, west)

	s.resetCalls()
	rep, err := s.backfiller(t, backfill.Options{DryRun: true, TagUnknown: true}).Run(context.Background())
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if got := s.KMS.Router().Count(localaws.AnyRegion, localaws.KMSTarget("TagResource")); got != 0 {
		t.Errorf("dry run: got %d TagResource calls, want 0", got)
	}
	if got := s.Tags(t, k1); len(got) != 0 {
		t.Errorf("dry run: key %s got tags %v, want none", k1, got)
	}
	if got := s.Tags(t, k2); !maps.Equal(got, map[string]string{"CreatedAt": "1999-01-01T00:00:00Z"}) {
		t.Errorf("dry run: key %s got tags %v, want its own tag only", k2, got)
	}
	rows := rowsByKey(rep.Rows)
	if r := rows[k1]; r.Action != backfill.ActionWouldTag || !maps.Equal(tagMap(r.Tags), governanceTags("ev-1", at)) {
		t.Errorf("row of %s: got %+v, want would-tag with the governance tags", k1, r)
	}
	if r := rows[k2]; r.Action != backfill.ActionWouldTag || !maps.Equal(tagMap(r.Tags), governanceTags("ev-2", at)) ||
		!maps.Equal(tagMap(r.Previous), map[string]string{"CreatedAt": "1999-01-01T00:00:00Z"}) {
		t.Errorf("row of %s: got %+v, want would-tag changing CreatedAt from 1999", k2, r)
	}
	if r := rows[unknown]; r.Action != backfill.ActionWouldTag || len(r.Tags) != 1 || r.Tags[0].Key != "CreatedAt" || !strings.Contains(r.Reason, noCreationEvent) {
		t.Errorf("row of %s: got %+v, want would-tag with CreatedAt only, saying it has no creation event", unknown, r)
	}
	if !rep.Summary.DryRun {
		t.Error("got summary without DryRun, want it set")
	}
}

func TestBackfillTagUnknownGivesCreatedAtOnly(t *testing.T) {
	s := startStack(t, localaws.CloudTrailOptions{}, map[string]string{"TAG_KEY_PREFIX": "gov:"})
	unknown := s.CreateKey(t, east)
	alreadyDated := s.CreateKey(t, west)
	s.TagKey(t, alreadyDated, map[string]string{"gov:CreatedAt": "2023-05-01T10:00:00Z"})
	pending := s.CreateKey(t, west)
	if _, err := s.KMS.Client(west).ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(pending), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	md, err := s.KMS.Client(east).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(unknown)})
	if err != nil {
		t.Fatal(err)
	}
	created := aws.ToTime(md.KeyMetadata.CreationDate).UTC().Format(time.RFC3339)

	// Without TagUnknown: reported, not tagged.
	s.resetCalls()
	rep, err := s.backfiller(t, backfill.Options{}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := rowsByKey(rep.Rows)
	if r := rows[unknown]; r.Action != backfill.ActionNoCreationEvent {
		t.Errorf("without --tag-unknown: row of %s: got %+v, want no-creation-event", unknown, r)
	}
	if r := rows[alreadyDated]; r.Action != backfill.ActionUpToDate || !strings.Contains(r.Reason, "already carries gov:CreatedAt") {
		t.Errorf("row of %s: got %+v, want up-to-date: it already has CreatedAt", alreadyDated, r)
	}
	if r := rows[pending]; r.Action != backfill.ActionPendingDeletion {
		t.Errorf("row of %s: got %+v, want pending-deletion", pending, r)
	}
	// The seeded multi-Region keys have no event either.
	if got := rep.Summary.NoCreationEvent; got != 4 {
		t.Errorf("got %d keys without a creation event, want 4 (2 seeds, unknown, alreadyDated)", got)
	}
	if got := s.KMS.Router().Count(localaws.AnyRegion, localaws.KMSTarget("TagResource")); got != 0 {
		t.Errorf("without --tag-unknown: got %d TagResource, want 0", got)
	}

	// With it: CreatedAt from the creation date, nothing else.
	rep, err = s.backfiller(t, backfill.Options{TagUnknown: true, Regions: []string{east}}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Tags(t, unknown), map[string]string{"gov:CreatedAt": created}; !maps.Equal(got, want) {
		t.Errorf("with --tag-unknown: key %s got tags %v, want %v", unknown, got, want)
	}
	if r := rowsByKey(rep.Rows)[unknown]; r.Action != backfill.ActionTagged || r.EventID != "" {
		t.Errorf("with --tag-unknown: row of %s: got %+v, want tagged without an event", unknown, r)
	}
	if got := s.Tags(t, alreadyDated); got["gov:CreatedAt"] != "2023-05-01T10:00:00Z" {
		t.Errorf("key %s got CreatedAt %q, want its own kept (eu-west-1 was not in the run)", alreadyDated, got["gov:CreatedAt"])
	}
}

func TestBackfillSurvivesLookupThrottling(t *testing.T) {
	// The stand-in allows 5 LookupEvents per second with no burst; the
	// backfiller is let to send 50: CloudTrail throttles, the SDK retries.
	s := startStack(t, localaws.CloudTrailOptions{LookupEventsRate: 5, LookupEventsBurst: 1},
		map[string]string{"MAX_BACKOFF": "250ms", "MAX_ATTEMPTS": "10"})
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var keys []string
	for i := range 4 {
		k := s.CreateKey(t, east)
		keys = append(keys, k)
		s.addEvent(t, east, createKeyRecord(fmt.Sprintf("ev-%d", i), k, at, "CUSTOMER"))
	}
	rep, err := s.backfiller(t, backfill.Options{Regions: []string{east}, LookupRate: 50, PageSize: 1}).Run(context.Background())
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if got := rep.Summary.Actions[backfill.ActionTagged]; got != len(keys) {
		t.Errorf("got %d keys tagged, want %d: %+v", got, len(keys), rep.Rows)
	}
	throttled := 0
	for _, r := range s.CloudTrail.Requests(east, "LookupEvents") {
		if r.ErrorCode == "ThrottlingException" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Error("got no ThrottlingException from the stand-in, want some: the test does not test retries")
	}
	// A page of one CreateKey event per key, an empty page for each other
	// creation event name, plus the retries.
	answered := len(keys) + len(events.CreationEventNames()) - 1
	if got, want := rep.Summary.Requests[backfill.OpLookupEvents], answered+throttled; got != want {
		t.Errorf("got %d LookupEvents requests counted, want %d (%d answered, %d throttled)", got, want, answered, throttled)
	}
	t.Logf("%d LookupEvents throttled and retried", throttled)
}

func TestBackfillKeepsToRateLimits(t *testing.T) {
	const (
		lookupRate = 20.0
		tagRate    = 10.0
		perRegion  = 15
	)
	s := startStack(t, localaws.CloudTrailOptions{LookupEventsRate: lookupRate, LookupEventsBurst: 2}, nil)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for _, region := range []string{east, west} {
		for i := range perRegion {
			k := s.CreateKey(t, region)
			s.addEvent(t, region, createKeyRecord(fmt.Sprintf("ev-%s-%d", region, i), k, at.Add(-time.Duration(i)*time.Minute), "CUSTOMER"))
		}
	}
	start := time.Now()
	rep, err := s.backfiller(t, backfill.Options{LookupRate: lookupRate, TagRate: tagRate, PageSize: 1}).Run(context.Background())
	took := time.Since(start)
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if got := rep.Summary.Actions[backfill.ActionTagged]; got != 2*perRegion {
		t.Fatalf("got %d tagged, want %d", got, 2*perRegion)
	}

	calls := s.tagCalls()
	for _, region := range []string{east, west} {
		var lookups []time.Time // every request, throttled ones included
		answered := 0
		for _, r := range s.CloudTrail.Requests(region, "LookupEvents") {
			lookups = append(lookups, r.Time)
			if r.ErrorCode == "" {
				answered++
			}
		}
		var tags []time.Time
		for _, c := range calls {
			if c.region == region {
				tags = append(tags, c.at)
			}
		}
		// perRegion pages of one CreateKey event, an empty page for each
		// other creation event name.
		if want := perRegion + len(events.CreationEventNames()) - 1; answered != want || len(tags) != perRegion {
			t.Fatalf("%s: got %d LookupEvents answered and %d TagResource, want %d and %d", region, answered, len(tags), want, perRegion)
		}
		lr, tr := observedRate(lookups), observedRate(tags)
		t.Logf("%s: LookupEvents %.1f/s (limit %.0f), TagResource %.1f/s (limit %.0f)", region, lr, lookupRate, tr, tagRate)
		if lr > lookupRate*1.25 {
			t.Errorf("%s: observed LookupEvents rate %.1f/s, want at most %.0f/s", region, lr, lookupRate)
		}
		if tr > tagRate*1.25 {
			t.Errorf("%s: observed TagResource rate %.1f/s, want at most %.0f/s", region, tr, tagRate)
		}
		// A pipeline: tagging starts while events are still being looked up.
		if !tags[0].Before(lookups[len(lookups)-1]) {
			t.Errorf("%s: first TagResource at %v, after the last LookupEvents at %v: want tagging to overlap the lookups",
				region, tags[0].Sub(start), lookups[len(lookups)-1].Sub(start))
		}
	}
	// The limits require (n-1)/rate per region, the regions in parallel.
	floor := time.Duration(float64(perRegion-1) / tagRate * float64(time.Second))
	if took < floor {
		t.Errorf("run took %v, less than the %v the tag rate requires", took, floor)
	}
	t.Logf("run took %v for %d keys; the tag rate requires at least %v", took, 2*perRegion, floor)
}

// observedRate is the rate of events at times ts: intervals per second
// between the first and the last.
func observedRate(ts []time.Time) float64 {
	if len(ts) < 2 {
		return 0
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return float64(len(ts)-1) / ts[len(ts)-1].Sub(ts[0]).Seconds()
}

func TestBackfillCancelStopsAndResumes(t *testing.T) {
	const n = 20
	s := startStack(t, localaws.CloudTrailOptions{}, nil)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var keys []string
	for i := range n {
		k := s.CreateKey(t, east)
		keys = append(keys, k)
		s.addEvent(t, east, createKeyRecord(fmt.Sprintf("ev-%02d", i), k, at.Add(-time.Duration(i)*time.Minute), "CUSTOMER"))
	}

	// At 5 TagResource per second, 20 keys take about 4 s; cancel after 1.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu          sync.Mutex
		cancelledAt time.Time
		progressed  sync.Once
	)
	stop := func() {
		mu.Lock()
		cancelledAt = time.Now()
		mu.Unlock()
		cancel()
	}
	b := s.backfiller(t, backfill.Options{Regions: []string{east}, TagRate: 5, Progress: func(p backfill.Progress) {
		if p.Actions[backfill.ActionTagged] >= 3 {
			progressed.Do(func() { time.AfterFunc(300*time.Millisecond, stop) })
		}
	}})
	rep, err := b.Run(ctx)
	returned := time.Now()
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if wait := returned.Sub(cancelledAt); wait > 1500*time.Millisecond {
		t.Errorf("Run returned %v after the cancel, want promptly", wait)
	}
	first := rep.Summary.Actions[backfill.ActionTagged]
	if !rep.Summary.Interrupted || first < 3 || first >= n || len(rep.Rows) != first {
		t.Fatalf("got summary %+v, want an interrupted run with some but not all %d keys tagged, one row each", rep.Summary, n)
	}
	for _, row := range rep.Rows {
		if got := s.Tags(t, row.KeyARN); got["CreationEventId"] != row.EventID {
			t.Errorf("key %s reported tagged, got tags %v", row.KeyARN, got)
		}
	}

	before := len(s.tagCalls())
	rep2, err := s.backfiller(t, backfill.Options{Regions: []string{east}}).Run(context.Background())
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	a := rep2.Summary.Actions
	if a[backfill.ActionTagged]+a[backfill.ActionUpToDate] != n || a[backfill.ActionUpToDate] < first {
		t.Errorf("second run: got actions %v, want all %d keys tagged or up to date, at least the %d of the first run up to date", a, n, first)
	}
	if got := len(s.tagCalls()) - before; got != a[backfill.ActionTagged] {
		t.Errorf("second run: got %d TagResource calls, want one per key tagged (%d)", got, a[backfill.ActionTagged])
	}
	for i, k := range keys {
		if got := s.Tags(t, k); got["CreationEventId"] != fmt.Sprintf("ev-%02d", i) {
			t.Errorf("after two runs key %s has tags %v, want its governance tags", k, got)
		}
	}
	t.Logf("first run tagged %d of %d before the cancel; the second run tagged %d", first, n, a[backfill.ActionTagged])
}

func TestBackfillNewRejectsBadOptions(t *testing.T) {
	policy, err := tagger.NewPolicy(tagger.DefaultNames(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := func(context.Context, string, string) (backfill.LookupAPI, backfill.KeyAPI, error) {
		return nil, nil, nil
	}
	one := []string{account}
	tests := []struct {
		name string
		opts backfill.Options
		want string
	}{
		{"no regions", backfill.Options{Accounts: one}, "no regions"},
		{"region twice", backfill.Options{Accounts: one, Regions: []string{east, east}}, "listed twice"},
		{"bad region", backfill.Options{Accounts: one, Regions: []string{"us-east-1,eu-west-1"}}, "is not a region name"},
		{"no accounts", backfill.Options{Regions: []string{east}}, "no accounts"},
		{"bad account", backfill.Options{Accounts: []string{"1234"}, Regions: []string{east}}, "is not a 12-digit account ID"},
		{"account twice", backfill.Options{Accounts: []string{account, account}, Regions: []string{east}}, "listed twice"},
		{"negative rate", backfill.Options{Accounts: one, Regions: []string{east}, TagRate: -1}, "rates must be positive"},
		{"negative read rate", backfill.Options{Accounts: one, Regions: []string{east}, ReadRate: -1}, "rates must be positive"},
		{"negative parallel", backfill.Options{Accounts: one, Regions: []string{east}, Parallel: -1}, "-1 accounts at once"},
		{"page size over 50", backfill.Options{Accounts: one, Regions: []string{east}, PageSize: 51}, "page size 51"},
		{"tag unknown without CreatedAt", backfill.Options{Accounts: one, Regions: []string{east}, TagUnknown: true}, "switched off"},
		{"valid", backfill.Options{Accounts: one, Regions: []string{east}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := backfill.New(policy, clients, nil, tt.opts)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkBackfill measures the keys tagged per second when the tag rate
// is the only limit that binds (20 TagResource per second, the lookups far
// faster), and reports it as a fraction of that limit: close to 1 means the
// pipeline adds nothing to what the limit requires (slightly over 1, since
// the first call of a run needs no wait). Each run also meets the keys of
// the runs before, already tagged: they cost reads, no TagResource.
func BenchmarkBackfill(b *testing.B) {
	const (
		keysPerRun = 20
		tagRate    = 20.0
	)
	s := startStack(b, localaws.CloudTrailOptions{LookupEventsRate: -1}, nil)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	total := time.Duration(0)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for j := range keysPerRun {
			k := s.CreateKey(b, east)
			s.addEvent(b, east, createKeyRecord(fmt.Sprintf("ev-%d-%d", i, j), k, at.Add(time.Duration(i)*time.Minute), "CUSTOMER"))
		}
		bf := s.backfiller(b, backfill.Options{Regions: []string{east}, LookupRate: 1000, TagRate: tagRate, ReadRate: 1000})
		b.StartTimer()
		start := time.Now()
		rep, err := bf.Run(context.Background())
		total += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if got := rep.Summary.Actions[backfill.ActionTagged]; got != keysPerRun {
			b.Fatalf("got %d keys tagged, want %d", got, keysPerRun)
		}
	}
	perSecond := float64(keysPerRun*b.N) / total.Seconds()
	b.ReportMetric(perSecond, "keys/s")
	b.ReportMetric(perSecond/tagRate, "of-tag-limit")
}
