package localaws

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// AccountMux is an http.Handler in front of the stand-ins of several
// accounts for a service whose stand-in serves one account (such as the
// CloudTrail stand-in, one event history per account): it hands each
// request to the handler of the account whose access key signed it, as
// AccountRouter does for KMS, asking resolver. A request of an account
// without a handler gets 400 UnrecognizedClientException in the awsJson1_1
// shape (WriteKMSError), as CloudTrail answers a key it does not know. It
// is safe for concurrent use.
type AccountMux struct {
	resolver AccountResolver
	handlers map[string]http.Handler // immutable after construction
}

// NewAccountMux returns a mux over handlers, by account.
func NewAccountMux(resolver AccountResolver, handlers map[string]http.Handler) *AccountMux {
	return &AccountMux{resolver: resolver, handlers: maps.Clone(handlers)}
}

// ServeHTTP implements http.Handler.
func (m *AccountMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scope, err := credentialScope(r)
	if err != nil {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException", fmt.Sprintf("localaws: %v", err))
		return
	}
	account, err := m.resolver.AccountOf(r.Context(), scope.accessKeyID)
	if err != nil {
		WriteKMSError(w, http.StatusInternalServerError, "InternalFailure", fmt.Sprintf("localaws: finding the account of access key %s: %v", scope.accessKeyID, err))
		return
	}
	h, ok := m.handlers[account]
	if !ok {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException",
			fmt.Sprintf("The security token included in the request is invalid. (localaws: access key %s is of account %s; this endpoint serves accounts %s)",
				scope.accessKeyID, account, strings.Join(slices.Sorted(maps.Keys(m.handlers)), ", ")))
		return
	}
	h.ServeHTTP(w, r)
}
