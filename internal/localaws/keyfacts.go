package localaws

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// KeyFacts are what the KMS stand-in says of a key beyond what local-kms
// knows: local-kms has no multi-Region keys, and gives every key the time
// it made it as its CreationDate. DescribeKey answers for such a key carry
// these facts, in KMS's own wire format.
type KeyFacts struct {
	// CreationDate, when set, is the key's CreationDate.
	CreationDate time.Time
	// PrimaryARN, when set, makes the key a multi-Region REPLICA of that
	// primary key.
	PrimaryARN string
	// KeyManager, when set, is the key's KeyManager (AWS or CUSTOMER).
	KeyManager string
}

// keyFacts rewrites the DescribeKey answers of the keys it holds facts of.
type keyFacts struct {
	mu    sync.Mutex
	facts map[string]KeyFacts // by key ARN
}

// SetKeyFacts makes DescribeKey of keyARN carry f.
func (k *KMS) SetKeyFacts(keyARN string, f KeyFacts) {
	k.facts.mu.Lock()
	defer k.facts.mu.Unlock()
	if k.facts.facts == nil {
		k.facts.facts = make(map[string]KeyFacts)
	}
	k.facts.facts[keyARN] = f
}

// AsCreatedBy makes the stand-in describe the key of ev as KMS would right
// after the call ev records: created at its eventTime and, for a
// ReplicateKey or the CreateKey of a replica, a replica of its primary. For
// fixed samples (events/) whose keys local-kms makes now.
func (k *KMS) AsCreatedBy(ev *events.KeyEvent) {
	f := KeyFacts{CreationDate: ev.EventTime}
	if ev.EventName == events.EventNameReplicateKey || ev.MultiRegionKeyType == events.MultiRegionReplica {
		f.PrimaryARN = ev.PrimaryKeyARN
	}
	k.SetKeyFacts(ev.KeyARN, f)
}

// wrap returns next, with the DescribeKey answers rewritten.
func (kf *keyFacts) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != KMSTarget("DescribeKey") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			body = kf.rewrite(body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// rewrite applies the facts of the described key to a DescribeKey answer;
// an answer it cannot read, or of a key without facts, is left as it is.
func (kf *keyFacts) rewrite(body []byte) []byte {
	var out struct {
		KeyMetadata map[string]any
	}
	if err := json.Unmarshal(body, &out); err != nil || out.KeyMetadata == nil {
		return body
	}
	keyARN, _ := out.KeyMetadata["Arn"].(string)
	kf.mu.Lock()
	f, ok := kf.facts[keyARN]
	kf.mu.Unlock()
	if !ok {
		return body
	}
	md := out.KeyMetadata
	if !f.CreationDate.IsZero() {
		md["CreationDate"] = float64(f.CreationDate.Unix())
	}
	if f.KeyManager != "" {
		md["KeyManager"] = f.KeyManager
	}
	if f.PrimaryARN != "" {
		region := ""
		if a, err := arn.Parse(f.PrimaryARN); err == nil {
			region = a.Region
		}
		md["MultiRegion"] = true
		md["MultiRegionConfiguration"] = map[string]any{
			"MultiRegionKeyType": "REPLICA",
			"PrimaryKey":         map[string]any{"Arn": f.PrimaryARN, "Region": region},
			"ReplicaKeys":        []any{},
		}
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(out); err != nil {
		return body
	}
	return bytes.TrimSpace(b.Bytes())
}
