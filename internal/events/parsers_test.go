package events

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestEventNamesAreTheTable checks that CreationEventNames and
// TagChangeEventNames are exactly the eventNames the parser table handles,
// each once and in table order, as their documentation promises; and that
// each name decodes to the kind its list says, where a name not in the
// table is ignored.
func TestEventNamesAreTheTable(t *testing.T) {
	creation, tagChange := CreationEventNames(), TagChangeEventNames()
	if want := []string{EventNameCreateKey, EventNameReplicateKey}; !slices.Equal(creation, want) {
		t.Errorf("CreationEventNames() = %v, want %v", creation, want)
	}
	if want := []string{EventNameTagResource, EventNameUntagResource}; !slices.Equal(tagChange, want) {
		t.Errorf("TagChangeEventNames() = %v, want %v", tagChange, want)
	}
	var table []string
	for _, p := range parsers {
		table = append(table, p.eventName)
	}
	if got := append(slices.Clone(creation), tagChange...); !slices.Equal(got, table) {
		t.Errorf("CreationEventNames() + TagChangeEventNames() = %v, want the parser table's %v, each once", got, table)
	}

	// Each call returns a new slice.
	creation[0] = "changed"
	if CreationEventNames()[0] != EventNameCreateKey {
		t.Error("CreationEventNames returned a slice shared with an earlier call")
	}
	tagChange[0] = "changed"
	if TagChangeEventNames()[0] != EventNameTagResource {
		t.Error("TagChangeEventNames returned a slice shared with an earlier call")
	}

	cases := []struct {
		names []string
		want  Kind
	}{
		{CreationEventNames(), KindTag},
		{TagChangeEventNames(), KindTagChange},
		{[]string{"EnableKeyRotation", "ScheduleKeyDeletion", "createkey", ""}, KindIgnore},
	}
	for _, tc := range cases {
		for _, name := range tc.names {
			record := minimalRecord(t, name)
			event := minimalEvent(t, record)
			for _, try := range []struct {
				fn     string
				decode func([]byte) (Decoded, error)
				raw    []byte
			}{{"Decode", Decode, event}, {"DecodeRecord", DecodeRecord, record}} {
				d, err := try.decode(try.raw)
				if err != nil || d.Kind != tc.want {
					t.Errorf("%s of a minimal %q record: got kind %v, error %v; want %v and no error", try.fn, name, d.Kind, err, tc.want)
					continue
				}
				if tc.want == KindTag && (d.Key == nil || d.Key.EventName != name) {
					t.Errorf("%s of a minimal %q record: got key %+v, want one of event %s", try.fn, name, d.Key, name)
				}
				if tc.want == KindTagChange && (d.Change == nil || d.Change.EventName != name) {
					t.Errorf("%s of a minimal %q record: got change %+v, want one of event %s", try.fn, name, d.Change, name)
				}
			}
		}
	}
}

// minimalRecord is a successful KMS call named eventName on one key, with
// what every parser of the table needs to read it: the key in the response
// of either creation call (a single-Region key for CreateKey, whose REPLICA
// would be skipped; a replica of itself for ReplicateKey), in the request
// and in resources.
func minimalRecord(t *testing.T, eventName string) []byte {
	t.Helper()
	const keyARN = "arn:aws:kms:us-east-1:111122223333:key/3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13"
	md := map[string]any{"arn": keyARN, "keyManager": KeyManagerCustomer}
	replicaMD := map[string]any{"arn": keyARN, "keyManager": KeyManagerCustomer, "multiRegionConfiguration": map[string]any{
		"multiRegionKeyType": "REPLICA", "primaryKey": map[string]any{"arn": keyARN, "region": "us-east-1"},
	}}
	return mustMarshal(t, map[string]any{
		"eventVersion":      "1.09",
		"userIdentity":      map[string]any{"type": IdentityIAMUser, "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"},
		"eventTime":         "2024-01-09T18:52:34Z",
		"eventSource":       EventSourceKMS,
		"eventName":         eventName,
		"awsRegion":         "us-east-1",
		"requestParameters": map[string]any{"keyId": keyARN, "tags": []map[string]string{{"tagKey": "team", "tagValue": "payments"}}, "tagKeys": []string{"team"}},
		"responseElements":  map[string]any{"keyMetadata": md, "replicaKeyMetadata": replicaMD},
		"eventID":           "255f79a8-b08b-43c9-a679-f60d27831ae3",
		"resources":         []map[string]string{{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": keyARN}},
	})
}

// minimalEvent is record as EventBridge delivers it.
func minimalEvent(t *testing.T, record []byte) []byte {
	t.Helper()
	return mustMarshal(t, map[string]any{
		"version": "0", "id": "6f87d04b-9f74-4f04-a780-7acf4b0a9b38", "source": SourceKMS, "detail-type": DetailTypeAPICall,
		"account": "111122223333", "time": "2024-01-09T18:52:34Z", "region": "us-east-1", "resources": []string{},
		"detail": json.RawMessage(record),
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
