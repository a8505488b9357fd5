package localaws

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// AnyAccessKey matches every access key id in AccountRouter.Count.
const AnyAccessKey = "*"

// AccountResolver tells the account an access key id belongs to. *Moto is
// one: it asks moto, which issued the key (Moto.AccountOf).
type AccountResolver interface {
	AccountOf(ctx context.Context, accessKeyID string) (string, error)
}

// AccountRouter is an http.Handler in front of the KMS stand-ins of several
// accounts (local-kms serves one account per process): it sends each
// request to the stand-in of the account whose access key signed it, as
// AWS does, an access key belonging to one account. The account of a key
// is what the resolver answers, such as moto for the keys of its IAM users
// and of the roles assumed with its STS. A request signed with a key of
// an account without a stand-in gets the 400 UnrecognizedClientException
// KMS answers for a key it does not know. The stand-in then routes by
// region (RegionRouter). It counts requests per access key id and target.
// It is safe for concurrent use.
type AccountRouter struct {
	resolver AccountResolver
	proxies  map[string]*httputil.ReverseProxy // immutable after construction

	mu     sync.Mutex
	counts map[keyTarget]int
}

// keyTarget is what AccountRouter counts requests by.
type keyTarget struct{ accessKeyID, target string }

// NewAccountRouter returns a router over stands, which maps each account
// to its KMS stand-in (whose Account must be that account), asking
// resolver the account of each access key.
func NewAccountRouter(resolver AccountResolver, stands map[string]*KMS) (*AccountRouter, error) {
	ar := &AccountRouter{resolver: resolver, proxies: make(map[string]*httputil.ReverseProxy, len(stands)), counts: map[keyTarget]int{}}
	for account, k := range stands {
		if k.Account() != account {
			return nil, fmt.Errorf("new account router: the KMS stand-in given for account %s serves account %s", account, k.Account())
		}
		u, err := url.Parse(k.URL())
		if err != nil {
			return nil, fmt.Errorf("new account router: %w", err)
		}
		ar.proxies[account] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.Out.Host = pr.In.Host // keep the signed Host header as the client sent it
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				WriteKMSError(w, http.StatusBadGateway, "KMSInternalException",
					fmt.Sprintf("localaws: the KMS stand-in of account %s at %s did not answer: %v", account, u, err))
			},
		}
	}
	return ar, nil
}

// Accounts returns the accounts the router has stand-ins for, sorted.
func (ar *AccountRouter) Accounts() []string { return slices.Sorted(maps.Keys(ar.proxies)) }

// ServeHTTP implements http.Handler.
func (ar *AccountRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scope, err := credentialScope(r)
	ar.mu.Lock()
	ar.counts[keyTarget{scope.accessKeyID, r.Header.Get("X-Amz-Target")}]++
	ar.mu.Unlock()
	if err != nil {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException", fmt.Sprintf("localaws: %v", err))
		return
	}
	account, err := ar.resolver.AccountOf(r.Context(), scope.accessKeyID)
	if err != nil {
		WriteKMSError(w, http.StatusInternalServerError, "KMSInternalException",
			fmt.Sprintf("localaws: finding the account of access key %s: %v", scope.accessKeyID, err))
		return
	}
	proxy, ok := ar.proxies[account]
	if !ok {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException",
			fmt.Sprintf("The security token included in the request is invalid. (localaws: access key %s is of account %s; this endpoint serves accounts %s)",
				scope.accessKeyID, account, strings.Join(ar.Accounts(), ", ")))
		return
	}
	proxy.ServeHTTP(w, r)
}

// Count returns how many requests for target (an X-Amz-Target such as
// "TrentService.TagResource", or AnyTarget) signed with accessKeyID (or
// AnyAccessKey) the router has received, rejected ones included.
func (ar *AccountRouter) Count(accessKeyID, target string) int {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	n := 0
	for k, c := range ar.counts {
		if (accessKeyID == AnyAccessKey || k.accessKeyID == accessKeyID) && (target == AnyTarget || k.target == target) {
			n += c
		}
	}
	return n
}

// CountsByAccessKey returns, for each access key id that signed requests
// for target (or AnyTarget), how many.
func (ar *AccountRouter) CountsByAccessKey(target string) map[string]int {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	out := map[string]int{}
	for k, c := range ar.counts {
		if target == AnyTarget || k.target == target {
			out[k.accessKeyID] += c
		}
	}
	return out
}
