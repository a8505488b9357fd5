package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// OrgAccount is an account of the organization, as ListAccounts gives it.
type OrgAccount struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Status string `json:"Status"`
}

// OrgAccountActive is the Status of an account that can be audited.
const OrgAccountActive = "ACTIVE"

// OrganizationsAPI is the part of the AWS Organizations API the audit
// calls: ListAccounts, one page at a time (nextToken "" for the first).
type OrganizationsAPI interface {
	ListAccounts(ctx context.Context, nextToken string) (accounts []OrgAccount, next string, err error)
}

var _ OrganizationsAPI = (*Organizations)(nil)

// ActiveAccounts returns the IDs of the ACTIVE accounts of the
// organization, sorted: the suspended and those being closed have no keys
// anyone can use.
func ActiveAccounts(ctx context.Context, api OrganizationsAPI) ([]string, error) {
	var ids []string
	token := ""
	for {
		accounts, next, err := api.ListAccounts(ctx, token)
		if err != nil {
			return nil, fmt.Errorf("listing the accounts of the organization: %w", err)
		}
		for _, a := range accounts {
			if a.Status == OrgAccountActive && accountPattern.MatchString(a.ID) && !slices.Contains(ids, a.ID) {
				ids = append(ids, a.ID)
			}
		}
		if next == "" || next == token {
			break
		}
		token = next
	}
	if len(ids) == 0 {
		return nil, errors.New("organizations:ListAccounts returned no ACTIVE account")
	}
	slices.Sort(ids)
	return ids, nil
}

// Organizations is a client of AWS Organizations' ListAccounts (awsJson1_1,
// SigV4-signed with the configuration's credentials), so that the audit
// does not need the SDK's organizations module for one call.
type Organizations struct {
	cfg      aws.Config
	endpoint string
	region   string // signing region
	now      func() time.Time
}

// NewOrganizations returns the client for the partition of cfg.Region.
// Organizations is a global service with one endpoint per partition
// (organizations.us-east-1.amazonaws.com for aws); endpoint, or else
// cfg.BaseEndpoint, replaces it (AWS_ENDPOINT_URL_ORGANIZATIONS).
func NewOrganizations(cfg aws.Config, endpoint string) *Organizations {
	o := &Organizations{cfg: cfg, endpoint: endpoint, now: time.Now}
	switch {
	case strings.HasPrefix(cfg.Region, "cn-"):
		o.region = "cn-northwest-1"
	case strings.HasPrefix(cfg.Region, "us-gov-"):
		o.region = "us-gov-west-1"
	default:
		o.region = "us-east-1"
	}
	if o.endpoint == "" {
		o.endpoint = aws.ToString(cfg.BaseEndpoint)
	}
	if o.endpoint == "" {
		suffix := "amazonaws.com"
		if o.region == "cn-northwest-1" {
			suffix = "amazonaws.com.cn"
		}
		o.endpoint = "https://organizations." + o.region + "." + suffix
	}
	return o
}

// orgAttempts is how often a ListAccounts call is tried when throttled or
// failing with a 5xx or a network fault.
const orgAttempts = 5

// ListAccounts returns one page of the organization's accounts.
func (o *Organizations) ListAccounts(ctx context.Context, nextToken string) ([]OrgAccount, string, error) {
	in := map[string]any{}
	if nextToken != "" {
		in["NextToken"] = nextToken
	}
	body, _ := json.Marshal(in)
	var out struct {
		Accounts  []OrgAccount `json:"Accounts"`
		NextToken string       `json:"NextToken"`
	}
	var err error
	for attempt := range orgAttempts {
		if attempt > 0 {
			delay := min(3*time.Second, 200*time.Millisecond<<attempt)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, "", ctx.Err()
			}
		}
		var data []byte
		var retryable bool
		data, retryable, err = o.call(ctx, "ListAccounts", body)
		if err == nil {
			if err := json.Unmarshal(data, &out); err != nil {
				return nil, "", fmt.Errorf("organizations ListAccounts: decoding the answer: %w", err)
			}
			return out.Accounts, out.NextToken, nil
		}
		if !retryable || ctx.Err() != nil {
			break
		}
	}
	return nil, "", fmt.Errorf("organizations ListAccounts: %w", err)
}

// call makes one signed request for op and returns the body of a 200
// answer, or the error and whether it is worth another attempt.
func (o *Organizations) call(ctx context.Context, op string, body []byte) ([]byte, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSOrganizationsV20161128."+op)
	if o.cfg.Credentials == nil {
		return nil, false, errors.New("no AWS credentials")
	}
	creds, err := o.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("retrieving credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "organizations", o.region, o.now()); err != nil {
		return nil, false, fmt.Errorf("signing: %w", err)
	}
	var client aws.HTTPClient = http.DefaultClient
	if o.cfg.HTTPClient != nil {
		client = o.cfg.HTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, retry.RetryableConnectionError{}.IsErrorRetryable(err) == aws.TrueTernary, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, true, err
	}
	if resp.StatusCode == http.StatusOK {
		return data, false, nil
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
		Msg     string `json:"Message"`
	}
	_ = json.Unmarshal(data, &e)
	code := e.Type
	if i := strings.LastIndex(code, "#"); i >= 0 {
		code = code[i+1:]
	}
	if code == "" {
		code = resp.Header.Get("X-Amzn-ErrorType")
		code, _, _ = strings.Cut(code, ":")
	}
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	msg := e.Message
	if msg == "" {
		msg = e.Msg
	}
	_, throttled := retry.DefaultThrottleErrorCodes[code]
	apiErr := &smithy.GenericAPIError{Code: code, Message: msg}
	if resp.StatusCode < http.StatusInternalServerError {
		apiErr.Fault = smithy.FaultClient
	} else {
		apiErr.Fault = smithy.FaultServer
	}
	return nil, throttled || resp.StatusCode >= http.StatusInternalServerError,
		fmt.Errorf("HTTP %d: %w", resp.StatusCode, apiErr)
}
