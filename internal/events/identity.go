package events

// UserIdentity is the userIdentity element of a CloudTrail record, trimmed
// to the fields this package reads; its fields are those of the CloudTrail
// userIdentity element reference,
// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
// (type, principalId, arn, accountId, accessKeyId, userName, invokedBy,
// credentialId, sessionContext with sessionIssuer and sourceIdentity, and
// onBehalfOf with userId and identityStoreArn). For a role session:
//
//	{
//	  "type": "AssumedRole",
//	  "principalId": "AROAEXAMPLEROLEID1234:alice",
//	  "arn": "arn:aws:sts::111122223333:assumed-role/KeyAdmin/alice",
//	  "accountId": "111122223333",
//	  "accessKeyId": "ASIAEXAMPLEKEYID1234",
//	  "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/KeyAdmin", ...}, "sourceIdentity": "alice"},
//	  "invokedBy": "cloudformation.amazonaws.com"
//	}
//
// For an IAM user (userName is the user's name; for the root user, the
// account's alias when it has one):
//
//	{"type": "IAMUser", "principalId": "AIDA...", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "userName": "alice"}
//
// For an IAM Identity Center user:
//
//	{
//	  "type": "IdentityCenterUser",
//	  "accountId": "111122223333",
//	  "onBehalfOf": {"userId": "...", "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-..."}
//	}
type UserIdentity struct {
	// Type is IAMUser, AssumedRole, FederatedUser, Root, AWSService,
	// AWSAccount, IdentityCenterUser, ...
	Type string `json:"type"`
	// PrincipalID is the principal's unique id.
	PrincipalID string `json:"principalId"`
	// ARN is the principal's ARN; absent for an AWS service.
	ARN string `json:"arn"`
	// AccountID is the principal's account.
	AccountID string `json:"accountId"`
	// AccessKeyID is the access key that signed the request.
	AccessKeyID string `json:"accessKeyId"`
	// UserName is userIdentity.userName: the IAM user's name for IAMUser,
	// the account's alias (when it has one) for Root; absent for role
	// sessions, whose role's name is sessionIssuer.userName.
	UserName string `json:"userName"`
	// InvokedBy is the AWS service that made the call for the principal.
	InvokedBy string `json:"invokedBy"`
	// CredentialID is the id of the credential, for Identity Center sessions.
	CredentialID string `json:"credentialId"`
	// SessionContext describes a temporary-credential session.
	SessionContext SessionContext `json:"sessionContext"`
	// OnBehalfOf names the IAM Identity Center user the call was made for.
	OnBehalfOf OnBehalfOf `json:"onBehalfOf"`
}

// SessionContext is userIdentity.sessionContext of a CloudTrail record:
//
//	{"sessionIssuer": {...}, "sourceIdentity": "alice", "attributes": {"creationDate": "2024-01-09T18:40:12Z", "mfaAuthenticated": "true"}}
type SessionContext struct {
	// SessionIssuer is the role or IAM user that issued the session.
	SessionIssuer SessionIssuer `json:"sessionIssuer"`
	// SourceIdentity is the STS source identity of the session, if any:
	// set when the first role of a chain was assumed (by the identity
	// provider's SAML attribute or token claim, or the caller of
	// AssumeRole with sts:SetSourceIdentity), kept by every role assumed
	// from that session, and never changed within it (the IAM User Guide's
	// "Monitor and control actions taken with assumed roles").
	SourceIdentity string `json:"sourceIdentity"`
}

// SessionIssuer is userIdentity.sessionContext.sessionIssuer of a CloudTrail
// record:
//
//	{"type": "Role", "principalId": "AROAEXAMPLEROLEID1234", "arn": "arn:aws:iam::111122223333:role/KeyAdmin", "accountId": "111122223333", "userName": "KeyAdmin"}
type SessionIssuer struct {
	// Type is Role, IAMUser or Root.
	Type string `json:"type"`
	// PrincipalID is the issuer's unique id.
	PrincipalID string `json:"principalId"`
	// ARN is the issuer's ARN.
	ARN string `json:"arn"`
	// AccountID is the issuer's account.
	AccountID string `json:"accountId"`
	// UserName is the issuer's friendly name.
	UserName string `json:"userName"`
}

// OnBehalfOf is userIdentity.onBehalfOf of a CloudTrail record, set for calls
// made for an IAM Identity Center user:
//
//	{"userId": "c4a8e4d8-20b1-70c3-9e5f-3a1b2c3d4e5f", "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-9067a1b2c3"}
type OnBehalfOf struct {
	// UserID is the user's id in the identity store.
	UserID string `json:"userId"`
	// IdentityStoreARN is the ARN of the identity store.
	IdentityStoreARN string `json:"identityStoreArn"`
}

// Creator returns who made the call. IssuerARN is set only for AssumedRole
// and FederatedUser sessions; IdentityStoreUser only when onBehalfOf names
// both a user and an identity store.
func (u UserIdentity) Creator() Creator {
	c := Creator{
		Type:           u.Type,
		PrincipalARN:   u.ARN,
		PrincipalID:    u.PrincipalID,
		AccountID:      u.AccountID,
		InvokedBy:      u.InvokedBy,
		UserName:       u.UserName,
		SourceIdentity: u.SessionContext.SourceIdentity,
	}
	if u.Type == IdentityAssumedRole || u.Type == IdentityFederatedUser {
		c.IssuerARN = u.SessionContext.SessionIssuer.ARN
	}
	if o := u.OnBehalfOf; o.UserID != "" && o.IdentityStoreARN != "" {
		c.IdentityStoreUser = o.IdentityStoreARN + "/user/" + o.UserID
	}
	return c
}
