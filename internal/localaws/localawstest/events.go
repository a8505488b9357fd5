package localawstest

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"
)

// UserARN is the principal of the events CreateKeyEvent and
// ReplicateKeyEvent make.
const UserARN = "arn:aws:iam::111122223333:user/alice"

// EventTime is the eventTime of the events CreateKeyEvent and
// ReplicateKeyEvent make: when the test binary started, to the second, so
// that it is within tagger.CreationTolerance of the CreationDate of the keys
// its tests create (the tagger checks the one against the other).
var EventTime = time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)

// displayDate is EventTime as CloudTrail writes keyMetadata.creationDate,
// e.g. "Jan 9, 2024, 6:52:34 PM".
func displayDate() string {
	t, _ := time.Parse(time.RFC3339, EventTime)
	return t.Format("Jan 2, 2006, 3:04:05 PM")
}

// CreateKeyEvent is a CreateKey event as EventBridge delivers it, for the
// key keyARN, created by UserARN with the request tags given.
func CreateKeyEvent(eventID, keyARN string, requestTags map[string]string) []byte {
	region := RegionOf(keyARN)
	keyID := keyARN[strings.LastIndex(keyARN, "/")+1:]
	var tags []map[string]string
	for k, v := range requestTags {
		tags = append(tags, map[string]string{"tagKey": k, "tagValue": v})
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i]["tagKey"] < tags[j]["tagKey"] })
	ev := map[string]any{
		"version": "0", "id": envelopeID(eventID), "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": "111122223333", "time": EventTime, "region": region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": UserARN, "accountId": "111122223333", "userName": "alice"},
			"eventTime":    EventTime, "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
			"sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2.15.0",
			"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS", "tags": tags},
			"responseElements": map[string]any{"keyMetadata": map[string]any{
				"AWSAccountId": "111122223333", "keyId": keyID, "arn": keyARN, "creationDate": displayDate(),
				"enabled": true, "keyUsage": "ENCRYPT_DECRYPT", "keyState": "Enabled", "origin": "AWS_KMS", "keyManager": "CUSTOMER",
				"keySpec": "SYMMETRIC_DEFAULT", "multiRegion": false,
			}},
			"requestID": "e0b4ad8e-6a1f-4a55-9b1b-7b0c1c8e9f10", "eventID": eventID, "readOnly": false,
			"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "111122223333", "eventCategory": "Management",
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// ReplicateKeyEvent is a ReplicateKey event: logged in the primary's region,
// the replica in replicaARN's region.
func ReplicateKeyEvent(eventID, primaryARN, replicaARN string) []byte {
	primaryRegion := RegionOf(primaryARN)
	replicaRegion := RegionOf(replicaARN)
	ev := map[string]any{
		"version": "0", "id": envelopeID(eventID), "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": "111122223333", "time": EventTime, "region": primaryRegion, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": UserARN, "accountId": "111122223333", "userName": "alice"},
			"eventTime":    EventTime, "eventSource": "kms.amazonaws.com", "eventName": "ReplicateKey", "awsRegion": primaryRegion,
			"requestParameters": map[string]any{"keyId": primaryARN, "replicaRegion": replicaRegion},
			"responseElements": map[string]any{"replicaKeyMetadata": map[string]any{
				"AWSAccountId": "111122223333", "keyId": replicaARN[strings.LastIndex(replicaARN, "/")+1:], "arn": replicaARN,
				"keyManager": "CUSTOMER", "keyState": "Enabled", "origin": "AWS_KMS", "multiRegion": true,
				"multiRegionConfiguration": map[string]any{"multiRegionKeyType": "REPLICA", "primaryKey": map[string]any{"arn": primaryARN, "region": primaryRegion}},
			}},
			"eventID": eventID, "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
			"recipientAccountId": "111122223333", "eventCategory": "Management",
		},
	}
	b, _ := json.Marshal(ev)
	return b
}

// envelopeID is an EventBridge event id for the CloudTrail eventID: the
// same for the same event, different for different ones.
func envelopeID(eventID string) string {
	if len(eventID) < 12 {
		return "6a7e8feb-b491-4cf7-a9f1-" + strings.Repeat("0", 12-len(eventID)) + eventID
	}
	return "6a7e8feb-b491-4cf7-a9f1-" + eventID[len(eventID)-12:]
}

// Fresh returns the sample event raw as if it had just happened: its
// eventTime and the envelope's time set to EventTime, so that CloudTrail's
// event history (90 days) holds it. It fails tb when raw is not an event.
func Fresh(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		tb.Fatalf("sample is not an event: %v", err)
	}
	detail, ok := env["detail"].(map[string]any)
	if !ok {
		tb.Fatal("sample has no detail")
	}
	env["time"], detail["eventTime"] = EventTime, EventTime
	b, err := json.Marshal(env)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
