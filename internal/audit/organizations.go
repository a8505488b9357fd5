package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// OrgAccountActive is the State (formerly Status) of an account that can
// be audited.
const OrgAccountActive = "ACTIVE"

// OrganizationsAPI is the part of the AWS Organizations API the audit
// calls: ListAccounts, which the SDK's paginator pages through.
type OrganizationsAPI = organizations.ListAccountsAPIClient

var _ OrganizationsAPI = (*organizations.Client)(nil)

// accountActive reports whether a is ACTIVE: by its State, or, where
// Organizations gives none, by the Status that State replaces.
func accountActive(a orgtypes.Account) bool {
	if a.State != "" {
		return a.State == orgtypes.AccountStateActive
	}
	return a.Status == orgtypes.AccountStatusActive
}

// ActiveAccounts returns the IDs of the ACTIVE accounts of the
// organization, sorted: the suspended and those being closed have no keys
// anyone can use. It pages through ListAccounts with the SDK's paginator.
func ActiveAccounts(ctx context.Context, api OrganizationsAPI) ([]string, error) {
	var ids []string
	pages := organizations.NewListAccountsPaginator(api, &organizations.ListAccountsInput{})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the accounts of the organization: %w", err)
		}
		for _, a := range out.Accounts {
			id := aws.ToString(a.Id)
			if accountActive(a) && accountPattern.MatchString(id) && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("organizations:ListAccounts returned no ACTIVE account")
	}
	slices.Sort(ids)
	return ids, nil
}

// OrganizationsRegion returns the region Organizations is called (and
// signed) in for the partition of region: it is a global service with one
// endpoint per partition, in us-east-1 for aws, cn-northwest-1 for aws-cn
// and us-gov-west-1 for aws-us-gov.
func OrganizationsRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "cn-northwest-1"
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov-west-1"
	}
	return "us-east-1"
}

// NewOrganizations returns the SDK's Organizations client for the
// partition of cfg.Region (see OrganizationsRegion), with cfg's
// credentials, retryer and endpoint settings (AWS_ENDPOINT_URL_ORGANIZATIONS
// when cfg was loaded with config.LoadDefaultConfig); endpoint, when not
// empty, replaces the endpoint.
func NewOrganizations(cfg aws.Config, endpoint string) *organizations.Client {
	return organizations.NewFromConfig(cfg, func(o *organizations.Options) {
		o.Region = OrganizationsRegion(cfg.Region)
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}
