// Package archivetest writes CloudTrail log files in the real format into
// an S3 implementation (moto's, in the tests), for the tests of the trail
// archive and of the commands that read it.
package archivetest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// LogFile is one CloudTrail log file.
type LogFile struct {
	// Prefix is the trail's S3 key prefix, empty for none.
	Prefix string
	// Org is the organization ID of an organization trail (o-...), empty
	// for an account's own trail.
	Org string
	// Account and Region are those the file is delivered for.
	Account, Region string
	// At is the time in the file's name: when CloudTrail delivered it.
	At time.Time
	// Records are the CloudTrail records the file holds, in order.
	Records [][]byte
	// Unique is the unique part of the file's name; random when empty.
	Unique string
}

// Key returns the object key CloudTrail gives the file:
// [PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz.
func (f LogFile) Key() string {
	var b strings.Builder
	if p := strings.Trim(f.Prefix, "/"); p != "" {
		b.WriteString(p + "/")
	}
	b.WriteString("AWSLogs/")
	if f.Org != "" {
		b.WriteString(f.Org + "/")
	}
	at := f.At.UTC()
	unique := f.Unique
	if unique == "" {
		var r [8]byte
		_, _ = rand.Read(r[:])
		unique = strings.ToUpper(hex.EncodeToString(r[:]))
	}
	fmt.Fprintf(&b, "%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%s.json.gz",
		f.Account, f.Region, at.Format("2006/01/02"), f.Account, f.Region, at.Format("20060102T1504Z"), unique)
	return b.String()
}

// Body returns the file's content: {"Records":[...]}, gzip-compressed, as
// CloudTrail writes it.
func (f LogFile) Body() []byte {
	var raw bytes.Buffer
	raw.WriteString(`{"Records":[`)
	for i, r := range f.Records {
		if i > 0 {
			raw.WriteByte(',')
		}
		raw.Write(r)
	}
	raw.WriteString(`]}`)
	return Gzip(raw.Bytes())
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// Put writes f into bucket with client and returns its key.
func Put(ctx context.Context, client *s3.Client, bucket string, f LogFile) (string, error) {
	key := f.Key()
	_, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(f.Body()),
		ContentType: aws.String("application/json"), ContentEncoding: aws.String("gzip"),
	})
	if err != nil {
		return "", fmt.Errorf("writing log file %s: %w", key, err)
	}
	return key, nil
}

// Record is a CloudTrail record of another call than a key's creation, to
// mix in with the creation records as real log files do: eventName of
// eventSource in account and region at at (Decrypt of kms.amazonaws.com,
// PutObject of s3.amazonaws.com...).
func Record(eventSource, eventName, account, region string, at time.Time) []byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	b, _ := json.Marshal(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "AssumedRole", "principalId": "AROAEXAMPLE:app", "accountId": account,
			"arn": "arn:aws:sts::" + account + ":assumed-role/app/i-0abc"},
		"eventTime": at.UTC().Format(time.RFC3339), "eventSource": eventSource, "eventName": eventName, "awsRegion": region,
		"sourceIPAddress": "192.0.2.20", "userAgent": "aws-sdk-go-v2/1.30.0",
		"requestParameters": map[string]any{"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, "responseElements": nil,
		"requestID": hex.EncodeToString(id[:8]), "eventID": hex.EncodeToString(id[:]), "readOnly": true,
		"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": account, "eventCategory": "Management",
	})
	return b
}
