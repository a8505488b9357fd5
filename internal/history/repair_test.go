package history_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/awssqs"
	"github.com/kms-autotagger/kms-autotagger/internal/history"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	alice    = "arn:aws:iam::111122223333:user/alice"
	mallory  = "arn:aws:iam::111122223333:user/mallory"
	selfRole = "arn:aws:iam::111122223333:role/kms-autotagger-AutoTaggerFunctionRole-ABC"
	// taggerRolePath is the path of every kms-autotagger role.
	taggerRolePath = "/kms-autotagger/"
)

// env is the real handler with the tamper repair on, against local-kms in
// two regions, the SQS stand-in and the CloudTrail stand-in.
type env struct {
	*localawstest.Stack
	handler *tagger.Handler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := localawstest.Start(t, localawstest.Options{CloudTrail: &localaws.CloudTrailOptions{}})
	k, ct, q := st.KMS, st.CloudTrail, st.SQS
	policy, err := tagger.NewPolicy(tagger.DefaultNames(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	finder := &history.Finder{
		// As NewFinder's clients: enough attempts for the stand-in's real
		// two-per-second quota.
		Lookup: func(region string) history.LookupAPI {
			return ct.Client(region, func(o *cloudtrail.Options) {
				o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = history.LookupAttempts })
			})
		},
		Describe: func(region string) history.DescribeAPI { return k.Client(region) },
	}
	h := &tagger.Handler{
		Policy:      policy,
		KMS:         regionalClients{k},
		DeadLetters: &awssqs.DeadLetterQueue{SQS: q.Client(), URL: st.QueueURL},
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Tamper:      tagger.TamperRepair{Creations: finder, SelfRoleARN: selfRole, TaggerRolePath: taggerRolePath},
		Confirmer:   finder,
	}
	return &env{Stack: st, handler: h}
}

type regionalClients struct{ k *localaws.KMS }

func (r regionalClients) KMSClient(_ context.Context, _, region string) (tagger.KMSAPI, error) {
	return r.k.Client(region), nil
}

func (e *env) kmsCall(t *testing.T, keyARN, op string, tags map[string]string, removed ...string) {
	t.Helper()
	if op == "TagResource" {
		e.TagKey(t, keyARN, tags)
		return
	}
	if _, err := e.KMS.Client(localawstest.RegionOf(keyARN)).UntagResource(context.Background(), &kms.UntagResourceInput{KeyId: aws.String(keyARN), TagKeys: removed}); err != nil {
		t.Fatal(err)
	}
}

func identity(principal string) map[string]any {
	if strings.Contains(principal, ":role/") {
		return map[string]any{"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/kms-autotagger-AutoTaggerFunctionRole-ABC/kms-autotagger",
			"accountId": "111122223333", "sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Role", "arn": principal}}}
	}
	if principal == "kms.amazonaws.com" {
		return map[string]any{"type": "AWSService", "invokedBy": principal}
	}
	return map[string]any{"type": "IAMUser", "arn": principal, "accountId": "111122223333", "userName": principal[strings.LastIndex(principal, "/")+1:]}
}

// record is a CloudTrail record of a KMS call on keyARN.
func record(eventID, name, principal, region string, params, response map[string]any, resources ...string) map[string]any {
	var res []map[string]any
	for _, r := range resources {
		res = append(res, map[string]any{"ARN": r, "accountId": "111122223333", "type": "AWS::KMS::Key"})
	}
	return map[string]any{
		"eventVersion": "1.09", "userIdentity": identity(principal), "eventTime": time.Now().UTC().Format(time.RFC3339),
		"eventSource": "kms.amazonaws.com", "eventName": name, "awsRegion": region, "requestParameters": params,
		"responseElements": response, "eventID": eventID, "readOnly": false, "resources": res, "eventType": "AwsApiCall",
		"managementEvent": true, "recipientAccountId": "111122223333", "eventCategory": "Management",
	}
}

func createKeyRecord(eventID, keyARN, principal string, md map[string]any) map[string]any {
	meta := map[string]any{"AWSAccountId": "111122223333", "arn": keyARN, "keyId": keyARN[strings.LastIndex(keyARN, "/")+1:], "keyManager": "CUSTOMER", "keyState": "Enabled"}
	for k, v := range md {
		meta[k] = v
	}
	return record(eventID, "CreateKey", principal, localawstest.RegionOf(keyARN), map[string]any{}, map[string]any{"keyMetadata": meta}, keyARN)
}

func (e *env) addHistory(t *testing.T, rec map[string]any) {
	t.Helper()
	b, _ := json.Marshal(rec)
	if err := e.CloudTrail.AddEvent(rec["awsRegion"].(string), b); err != nil {
		t.Fatal(err)
	}
}

func envelope(rec map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": "e" + rec["eventID"].(string), "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
		"account": "111122223333", "time": rec["eventTime"], "region": rec["awsRegion"], "resources": []string{}, "detail": rec,
	})
	return b
}

func (e *env) handle(t *testing.T, rec map[string]any) tagger.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := e.handler.Handle(ctx, envelope(rec))
	if err != nil {
		t.Fatalf("Handle %s: %v", rec["eventName"], err)
	}
	return res
}

func tagRecord(eventID, name, principal, keyARN string, set map[string]string, removed ...string) map[string]any {
	params := map[string]any{"keyId": keyARN[strings.LastIndex(keyARN, "/")+1:]}
	if name == "TagResource" {
		var tags []map[string]string
		for k, v := range set {
			tags = append(tags, map[string]string{"tagKey": k, "tagValue": v})
		}
		params["tags"] = tags
	} else {
		params["tagKeys"] = removed
	}
	return record(eventID, name, principal, localawstest.RegionOf(keyARN), params, nil, keyARN)
}

func TestTamperRepair(t *testing.T) {
	e := newEnv(t)
	key := e.CreateKey(t, "us-east-1")
	created := createKeyRecord("c0000000-0000-4000-8000-000000000001", key, alice, nil)
	e.addHistory(t, created)
	if res := e.handle(t, created); res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("creation: got %s (%s), want tagged", res.Outcome, res.Reason)
	}
	truth := e.Tags(t, key)

	t.Run("removed governance tag is restored", func(t *testing.T) {
		e.kmsCall(t, key, "UntagResource", nil, "CreatedBy")
		res := e.handle(t, tagRecord("c0000000-0000-4000-8000-000000000002", "UntagResource", mallory, key, nil, "CreatedBy"))
		if res.Outcome != tagger.OutcomeTagged || res.Repair == nil || res.Repair.Actor != mallory || len(res.Repair.Removed) != 1 {
			t.Errorf("got %s %+v (%s), want tagged with a repair by mallory", res.Outcome, res.Repair, res.Reason)
		}
		if got := e.Tags(t, key); got["CreatedBy"] != alice {
			t.Errorf("CreatedBy: got %q, want %q restored", got["CreatedBy"], alice)
		}
	})
	t.Run("changed governance tag is corrected", func(t *testing.T) {
		e.kmsCall(t, key, "TagResource", map[string]string{"CreatedBy": mallory, "Team": "red"})
		res := e.handle(t, tagRecord("c0000000-0000-4000-8000-000000000003", "TagResource", mallory, key, map[string]string{"CreatedBy": mallory, "Team": "red"}))
		if res.Outcome != tagger.OutcomeTagged || res.Repair == nil || len(res.Repair.Changed) != 1 {
			t.Errorf("got %s %+v, want tagged with one changed tag", res.Outcome, res.Repair)
		}
		got := e.Tags(t, key)
		for k, v := range truth {
			if got[k] != v {
				t.Errorf("%s: got %q, want %q", k, got[k], v)
			}
		}
		if got["Team"] != "red" {
			t.Errorf("Team: got %q, want the actor's own tag left alone", got["Team"])
		}
	})

	e.KMS.Router().ResetCounts()
	lookups := e.CloudTrail.Count(localaws.AnyRegion, "LookupEvents")
	for _, tt := range []struct {
		name string
		rec  map[string]any
	}{
		{"own role", tagRecord("c0000000-0000-4000-8000-000000000004", "TagResource", selfRole, key, map[string]string{"CreatedBy": "x"})},
		{"other tags only", tagRecord("c0000000-0000-4000-8000-000000000005", "UntagResource", mallory, key, nil, "Team")},
	} {
		t.Run(tt.name+" causes no call", func(t *testing.T) {
			if res := e.handle(t, tt.rec); res.Outcome != tagger.OutcomeSkipped || res.Reason == "" {
				t.Errorf("got %s (%s), want skipped with a reason", res.Outcome, res.Reason)
			}
		})
	}
	if n := e.KMS.Router().Count(localaws.AnyRegion, localaws.AnyTarget); n != 0 {
		t.Errorf("KMS calls for ignored changes: got %d, want 0", n)
	}
	if n := e.CloudTrail.Count(localaws.AnyRegion, "LookupEvents") - lookups; n != 0 {
		t.Errorf("LookupEvents calls for ignored changes: got %d, want 0", n)
	}

	t.Run("the repair's own event changes nothing", func(t *testing.T) {
		e.KMS.Router().ResetCounts()
		res := e.handle(t, tagRecord("c0000000-0000-4000-8000-000000000006", "TagResource", "arn:aws:iam::111122223333:user/ops", key, map[string]string{"CreatedBy": alice}))
		if res.Outcome != tagger.OutcomeSkipped {
			t.Errorf("got %s, want skipped: the value is already the truth", res.Outcome)
		}
		if n := e.KMS.Router().Count(localaws.AnyRegion, localaws.KMSTarget("TagResource")); n != 0 {
			t.Errorf("TagResource calls: got %d, want 0", n)
		}
	})
}

func TestTamperRepairReplica(t *testing.T) {
	e := newEnv(t)
	primary := e.CreateKey(t, "us-east-1")
	replica := e.CreateKey(t, "eu-west-1")
	e.KMS.SetKeyFacts(replica, localaws.KeyFacts{PrimaryARN: primary}) // local-kms has no multi-Region keys
	mrc := map[string]any{"multiRegionKeyType": "REPLICA", "primaryKey": map[string]any{"arn": primary, "region": "us-east-1"}}
	e.addHistory(t, createKeyRecord("d0000000-0000-4000-8000-000000000001", replica, "kms.amazonaws.com", map[string]any{"multiRegion": true, "multiRegionConfiguration": mrc}))
	meta := map[string]any{"AWSAccountId": "111122223333", "arn": replica, "keyId": replica[strings.LastIndex(replica, "/")+1:], "keyManager": "CUSTOMER", "multiRegionConfiguration": mrc}
	e.addHistory(t, record("d0000000-0000-4000-8000-000000000002", "ReplicateKey", alice, "us-east-1",
		map[string]any{"keyId": primary, "replicaRegion": "eu-west-1"}, map[string]any{"replicaKeyMetadata": meta}, primary))

	res := e.handle(t, tagRecord("d0000000-0000-4000-8000-000000000003", "UntagResource", mallory, replica, nil, "CreatedBy", "ReplicaOf"))
	if res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s (%s), want tagged", res.Outcome, res.Reason)
	}
	got := e.Tags(t, replica)
	if got["CreatedBy"] != alice || got["ReplicaOf"] != primary || got["CreationEventId"] != "d0000000-0000-4000-8000-000000000002" {
		t.Errorf("replica tags: got %v, want the ReplicateKey event's creator, primary and event id", got)
	}
}

func TestTamperRepairBeyondHistoryIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	key := e.CreateKey(t, "us-east-1") // its creation event is not in the history
	// Created before the 90 days of the history (local-kms dates every key
	// now; the stand-in's router says otherwise).
	e.KMS.SetKeyFacts(key, localaws.KeyFacts{CreationDate: time.Now().AddDate(0, 0, -120)})
	res := e.handle(t, tagRecord("f0000000-0000-4000-8000-000000000001", "UntagResource", mallory, key, nil, "CreatedAt"))
	if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeCreationEventNotFound {
		t.Fatalf("got %s %s, want dead-lettered %s", res.Outcome, res.ErrorCode, tagger.CodeCreationEventNotFound)
	}
	letters := e.DeadLetters(t)
	if len(letters) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(letters))
	}
	d := letters[0].Record
	if !strings.Contains(d.Error.Message, "90 days") || !strings.Contains(d.Error.Message, mallory) || d.KeyARN != key {
		t.Errorf("dead letter: got %+v, want it to say the history keeps 90 days and who changed the tags", d)
	}
}
