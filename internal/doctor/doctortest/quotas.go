// Package doctortest serves what the doctor's tests need and no stand-in
// in localaws serves: Service Quotas (moto implements it for vpc only).
package doctortest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Quota is one quota as Service Quotas answers it (the ServiceQuota shape
// of the API reference).
type Quota struct {
	ServiceCode string  `json:"ServiceCode"`
	ServiceName string  `json:"ServiceName,omitempty"`
	QuotaArn    string  `json:"QuotaArn,omitempty"`
	QuotaCode   string  `json:"QuotaCode"`
	QuotaName   string  `json:"QuotaName"`
	Value       float64 `json:"Value"`
	Unit        string  `json:"Unit,omitempty"`
	Adjustable  bool    `json:"Adjustable"`
	GlobalQuota bool    `json:"GlobalQuota"`
}

// QuotaRequest is one request the server received.
type QuotaRequest struct {
	Operation, Region, ServiceCode, NextToken string
}

// Operations the server serves, as named by X-Amz-Target.
const (
	ListServiceQuotas           = "ListServiceQuotas"
	ListAWSDefaultServiceQuotas = "ListAWSDefaultServiceQuotas"
	targetPrefix                = "ServiceQuotasV20190624."
)

// QuotaServer serves Service Quotas' ListServiceQuotas and
// ListAWSDefaultServiceQuotas in its real protocol (AWS JSON 1.1, POST /
// with X-Amz-Target ServiceQuotasV20190624.OPERATION), one quota per page
// so that clients must page, and records every request. Applied and
// Defaults hold the quotas by service code; Errors the error code to
// answer (AccessDeniedException, NoSuchResourceException) by operation and
// service code ("ListServiceQuotas/kms"). It is safe for concurrent use.
type QuotaServer struct {
	mu       sync.Mutex
	Applied  map[string][]Quota
	Defaults map[string][]Quota
	Errors   map[string]string
	requests []QuotaRequest
}

// Set replaces the server's answers.
func (s *QuotaServer) Set(applied, defaults map[string][]Quota, errs map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Applied, s.Defaults, s.Errors, s.requests = applied, defaults, errs, nil
}

// Requests returns the requests so far.
func (s *QuotaServer) Requests() []QuotaRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]QuotaRequest(nil), s.requests...)
}

// ServeHTTP implements http.Handler.
func (s *QuotaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	fail := func(status int, code, msg string) {
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if r.Method != http.MethodPost || !ok || (op != ListServiceQuotas && op != ListAWSDefaultServiceQuotas) {
		fail(http.StatusBadRequest, "UnknownOperationException", "doctortest: unexpected "+r.Method+" "+target)
		return
	}
	var in struct {
		ServiceCode string `json:"ServiceCode"`
		NextToken   string `json:"NextToken"`
		MaxResults  int    `json:"MaxResults"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.ServiceCode == "" {
		fail(http.StatusBadRequest, "IllegalArgumentException", "doctortest: no ServiceCode")
		return
	}
	region := ""
	if _, rest, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		if f := strings.Split(strings.Split(rest, ",")[0], "/"); len(f) >= 3 {
			region = f[2]
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, QuotaRequest{Operation: op, Region: region, ServiceCode: in.ServiceCode, NextToken: in.NextToken})
	code := s.Errors[op+"/"+in.ServiceCode]
	quotas := s.Applied[in.ServiceCode]
	if op == ListAWSDefaultServiceQuotas {
		quotas = s.Defaults[in.ServiceCode]
	}
	s.mu.Unlock()
	switch code {
	case "":
	case "AccessDeniedException":
		fail(http.StatusBadRequest, code, "User is not authorized to perform: servicequotas:"+op)
		return
	default:
		fail(http.StatusBadRequest, code, "doctortest: "+code)
		return
	}
	i := 0
	if in.NextToken != "" {
		i, _ = strconv.Atoi(in.NextToken)
	}
	out := map[string]any{"Quotas": []Quota{}}
	if i < len(quotas) {
		q := quotas[i]
		q.QuotaArn = fmt.Sprintf("arn:aws:servicequotas:%s:111122223333:%s/%s", region, q.ServiceCode, q.QuotaCode)
		out["Quotas"] = []Quota{q}
	}
	if i+1 < len(quotas) {
		out["NextToken"] = strconv.Itoa(i + 1)
	}
	_ = json.NewEncoder(w).Encode(out)
}
