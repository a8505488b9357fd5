package awscfn_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	account = localaws.DefaultAccount
	region  = "eu-west-1"
	// The principals of the fixtures createkey_cloudformation.json (the
	// service role's session) and stackop_createstack_sso.json (the
	// Identity Center user who ran CreateStack).
	serviceSession = "arn:aws:sts::111122223333:assumed-role/cfn-deployer/AWSCloudFormation"
	serviceRole    = "arn:aws:iam::111122223333:role/cfn-deployer"
	carol          = "carol@example.com"
)

// world is the real handler, wired by app.NewHandler from the environment
// as in Lambda, against local-kms (us-east-1 and eu-west-1), the SQS
// stand-in, the CloudTrail stand-in (the event history: creation events
// for the tamper repair, stack operations for CreatedByUser) and the
// CloudFormation stand-in served over its real protocol from httptest
// (AWS_ENDPOINT_URL_CLOUDFORMATION), which the SDK's CloudFormation client
// calls.
type world struct {
	*localawstest.Stack
	cfn     *localaws.CloudFormation
	handler *tagger.Handler
	logs    *localawstest.SyncBuffer
}

func newWorld(t *testing.T, env map[string]string) *world {
	t.Helper()
	cfn := localaws.NewCloudFormation(localaws.CloudFormationOptions{})
	srv := httptest.NewServer(cfn)
	t.Cleanup(srv.Close)
	all := map[string]string{
		"MAX_BACKOFF":         "20ms",
		"DEAD_LETTER_RESERVE": "1s",
		"TAG_RATE_LIMIT":      "0",
		// Most tests make many lookups in a row; TestLookupRateLimit
		// proves the limit.
		"STACK_LOOKUP_RATE_LIMIT":         "0",
		"AWS_ENDPOINT_URL_CLOUDFORMATION": srv.URL,
		"METRICS_NAMESPACE":               "-",
	}
	maps.Copy(all, env)
	st := localawstest.Start(t, localawstest.Options{CloudTrail: &localaws.CloudTrailOptions{LookupEventsRate: -1}, Env: all})
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &localawstest.SyncBuffer{}
	h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Stacks == nil && (cfg.Names.CreatedByStack != "" || cfg.Names.CreatedByUser != "") {
		t.Fatal("app.NewHandler: got no stack finder, want one with CreatedByStack or CreatedByUser on")
	}
	return &world{Stack: st, cfn: cfn, handler: h, logs: logs}
}

// ids numbers the event and stack ids of a test binary.
var ids atomic.Int64

func nextID() string { return fmt.Sprintf("%012d", ids.Add(1)) }

// newStack returns the ARN of a stack named name in the world's region.
func newStack(name string) string {
	return "arn:aws:cloudformation:" + region + ":" + account + ":stack/" + name + "/5b0c7e2a-3951-11ef-8a4c-" + nextID()
}

// createdByCloudFormation makes a key in the world's region, as a stack
// would: the CloudFormation stand-in lists it as resource DataKey of
// stackARN, in status. It returns the key's ARN.
func (w *world) createdByCloudFormation(t *testing.T, stackARN, status string) string {
	t.Helper()
	key := w.CreateKey(t, region)
	if stackARN != "" {
		w.cfn.AddResource(account, region, localaws.StackResource{
			StackName: stackName(stackARN), StackID: stackARN, LogicalResourceID: "DataKey",
			PhysicalResourceID: keyID(key), ResourceType: "AWS::KMS::Key", ResourceStatus: status,
		})
	}
	return key
}

func stackName(stackARN string) string { return strings.Split(stackARN, "/")[1] }

func keyID(keyARN string) string { return keyARN[strings.LastIndex(keyARN, "/")+1:] }

// readFixture reads a fixture of the events package as a JSON object.
func readFixture(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "events", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

// createKeyEvent is the fixture's CreateKey event (createkey_cloudformation:
// CloudFormation's call with the service role cfn-deployer;
// createkey_cloudformation_no_service_role: with the operator's own
// Identity Center session; createkey_stackset_instance: a StackSet's
// execution role), made the event of keyARN at at, with eventID.
func createKeyEvent(t *testing.T, fixture, eventID, keyARN string, at time.Time) []byte {
	t.Helper()
	ev := readFixture(t, fixture)
	r := strings.Split(keyARN, ":")[3]
	ev["id"], ev["time"], ev["region"] = "e"+eventID, at.UTC().Format(time.RFC3339), r
	d := obj(ev, "detail")
	d["eventID"], d["eventTime"], d["awsRegion"] = eventID, at.UTC().Format(time.RFC3339), r
	md := obj(d, "responseElements", "keyMetadata")
	md["arn"], md["keyId"], md["creationDate"] = keyARN, keyID(keyARN), at.UTC().Format("Jan 2, 2006, 3:04:05 PM")
	d["resources"] = []any{map[string]any{"accountId": account, "type": "AWS::KMS::Key", "ARN": keyARN}}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureStack is the stack of the stack operation fixtures.
const fixtureStack = "arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/5b0c7e2a-3951-11ef-8a4c-0a1b2c3d4e5f"

// operationRecord is the fixture's stack operation record
// (stackop_createstack_sso: CreateStack by carol@example.com through
// Identity Center; stackop_updatestack_pipeline: UpdateStack by a pipeline
// role's session), made a call on stackARN at at.
func operationRecord(t *testing.T, fixture, stackARN string, at time.Time) []byte {
	t.Helper()
	rec := readFixture(t, fixture)
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), fixtureStack, stackARN)
	s = strings.ReplaceAll(s, `"stackName":"payments"`, `"stackName":"`+stackName(stackARN)+`"`)
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		t.Fatal(err)
	}
	rec["eventID"], rec["eventTime"] = "0c6f2a8e-4b1d-4e7a-9c3f-"+nextID(), at.UTC().Format(time.RFC3339)
	out, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ranStack records in the event history that the fixture's operation was
// made on stackARN at at.
func (w *world) ranStack(t *testing.T, fixture, stackARN string, at time.Time) {
	t.Helper()
	if err := w.CloudTrail.AddEvent(region, operationRecord(t, fixture, stackARN, at)); err != nil {
		t.Fatal(err)
	}
}

// cloudFormationTags are the tags of a key CloudFormation made with the
// service role cfn-deployer, at at with eventID, without the stack's.
func cloudFormationTags(eventID string, at time.Time) map[string]string {
	return map[string]string{
		"CreatedBy": serviceSession, "CreatedByRole": serviceRole, "CreatedVia": "cloudformation.amazonaws.com",
		"CreatedAt": at.UTC().Format(time.RFC3339), "CreationEventId": eventID, "CreatedByEvidence": "event",
	}
}

func with(tags map[string]string, kv ...string) map[string]string {
	out := maps.Clone(tags)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func noteOf(notes []tagger.Note, key string) *tagger.Note {
	for i := range notes {
		if notes[i].Key == key {
			return &notes[i]
		}
	}
	return nil
}

// now is an event time for a key made now, to the second as CloudTrail
// records it.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }
