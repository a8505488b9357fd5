package audittest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// OrgCall makes the AWS Organizations call op with in (JSON) at endpoint,
// such as moto's, signed in form only (moto checks no signatures, but finds
// the caller's account by the access key), and decodes the answer into
// out when not nil. Tests use it to make an organization and its accounts
// (CreateOrganization, CreateAccount, CloseAccount).
func OrgCall(ctx context.Context, endpoint, accessKeyID, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSOrganizationsV20161128."+op)
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+accessKeyID+"/20260101/us-east-1/organizations/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("organizations %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("organizations %s: %s %s", op, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("organizations %s: %w: %s", op, err, data)
		}
	}
	return nil
}

// CreateAccount creates an account named name in the organization of the
// caller (which must have one: CreateOrganization) and returns its ID.
func CreateAccount(ctx context.Context, endpoint, accessKeyID, name string) (string, error) {
	var out struct {
		Status struct {
			AccountID string `json:"AccountId"`
			State     string `json:"State"`
		} `json:"CreateAccountStatus"`
	}
	if err := OrgCall(ctx, endpoint, accessKeyID, "CreateAccount", map[string]string{"AccountName": name, "Email": name + "@example.com"}, &out); err != nil {
		return "", err
	}
	if out.Status.AccountID == "" {
		return "", fmt.Errorf("organizations CreateAccount %s: no account ID (state %s)", name, out.Status.State)
	}
	return out.Status.AccountID, nil
}
