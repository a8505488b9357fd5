package localaws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// DefaultAccount is the account ID the stand-ins use when their options
// leave it empty (local-kms's own default).
const DefaultAccount = "111122223333"

// Static credentials the clients made here sign with. The stand-ins check
// no signatures; the region in the credential scope is what matters.
const (
	localAccessKeyID     = "AKIALOCALAWSEXAMPLE"
	localSecretAccessKey = "localaws-secret-access-key"
)

// kmsStartedLine is what local-kms logs once it has bound its port.
var kmsStartedLine = regexp.MustCompile(`Local KMS started on \S*:(\d+)`)

// accountPattern is the form of an AWS account ID.
var accountPattern = regexp.MustCompile(`^\d{12}$`)

// regionPattern is a loose check that a region is a region name.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// KMSOptions configures StartKMS.
type KMSOptions struct {
	// Regions to serve, one local-kms process each. At least one.
	Regions []string
	// Account is the account ID in key ARNs; DefaultAccount when empty.
	Account string
	// Seeds maps a region to the symmetric keys local-kms creates in it at
	// startup; every region must be in Regions.
	Seeds map[string][]SeedKey
	// Intercept, when set, is installed on the router (see
	// RegionRouter.SetIntercept, which can also change it later).
	Intercept InterceptFunc
	// Output, when set, receives a copy of every local-kms's stdout and
	// stderr, each line prefixed with "[local-kms REGION] ".
	Output io.Writer
	// StartTimeout bounds the start of each process; DefaultStartTimeout
	// when zero.
	StartTimeout time.Duration
}

// SeedKey is a symmetric (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT) key that
// local-kms creates at startup, with a random 256-bit backing key.
type SeedKey struct {
	KeyID       string // key ID, such as a UUID; required
	Description string // optional
}

// KMS is a running KMS stand-in: one local-kms per region behind a
// RegionRouter listening on 127.0.0.1.
type KMS struct {
	account string
	regions []string
	router  *RegionRouter
	server  *http.Server
	url     string
	dir     string
	procs   []*process
	facts   keyFacts
	// http is the connection pool of every Client, as clients made from
	// one aws.Config share its HTTPClient.
	http *awshttp.BuildableClient

	closeOnce sync.Once
	closeErr  error
}

// StartKMS starts one local-kms per region in opts.Regions, each with a
// fresh data directory and its seed keys, waits until each answers ListKeys
// and holds its seed keys, and starts the RegionRouter in front of them on
// 127.0.0.1. ctx bounds the start only; the processes run until Close.
//
// local-kms binds all interfaces (0.0.0.0) on a port the kernel picks;
// clients should only use URL, which is on 127.0.0.1.
func StartKMS(ctx context.Context, opts KMSOptions) (*KMS, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("start KMS stand-in: %w", err)
	}
	account := opts.Account
	if account == "" {
		account = DefaultAccount
	}
	bin, err := ToolPath(LocalKMSTool)
	if err != nil {
		return nil, fmt.Errorf("start KMS stand-in: %w", err)
	}
	dir, err := os.MkdirTemp("", "localaws-kms-")
	if err != nil {
		return nil, fmt.Errorf("start KMS stand-in: %w", err)
	}
	k := &KMS{account: account, regions: slices.Clone(opts.Regions), dir: dir, http: awshttp.NewBuildableClient()}

	var outMu sync.Mutex
	backends := make(map[string]string, len(opts.Regions))
	for _, region := range opts.Regions {
		var out io.Writer
		if opts.Output != nil {
			out = &prefixWriter{mu: &outMu, w: opts.Output, prefix: "[local-kms " + region + "] "}
		}
		p, backend, err := startLocalKMS(ctx, bin, filepath.Join(dir, region), region, account, opts.Seeds[region], out, opts.StartTimeout)
		if err != nil {
			return nil, errors.Join(err, k.Close())
		}
		k.procs = append(k.procs, p)
		backends[region] = backend
	}

	k.router, err = NewRegionRouter(backends)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start KMS stand-in: %w", err), k.Close())
	}
	k.router.SetIntercept(opts.Intercept)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start KMS router: %w", err), k.Close())
	}
	k.url = "http://" + ln.Addr().String()
	k.server = &http.Server{Handler: k.facts.wrap(k.router), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = k.server.Serve(ln) }() // returns http.ErrServerClosed on Close
	return k, nil
}

// validate checks opts.
func (o KMSOptions) validate() error {
	if len(o.Regions) == 0 {
		return errors.New("no regions")
	}
	for i, r := range o.Regions {
		if !regionPattern.MatchString(r) {
			return fmt.Errorf("region %q is not a region name such as us-east-1", r)
		}
		if slices.Contains(o.Regions[:i], r) {
			return fmt.Errorf("region %s listed twice", r)
		}
	}
	if o.Account != "" && !accountPattern.MatchString(o.Account) {
		return fmt.Errorf("account %q is not 12 digits", o.Account)
	}
	for region, keys := range o.Seeds {
		if !slices.Contains(o.Regions, region) {
			return fmt.Errorf("seed keys for region %s, which is not in Regions %v", region, o.Regions)
		}
		for i, key := range keys {
			if key.KeyID == "" {
				return fmt.Errorf("seed key %d of region %s has no KeyID", i, region)
			}
			if slices.ContainsFunc(keys[:i], func(s SeedKey) bool { return s.KeyID == key.KeyID }) {
				return fmt.Errorf("seed key %s listed twice in region %s", key.KeyID, region)
			}
		}
	}
	return nil
}

// startLocalKMS starts local-kms for region with its state in dir and
// returns it with its base URL.
func startLocalKMS(ctx context.Context, bin, dir, region, account string, seeds []SeedKey, out io.Writer, timeout time.Duration) (*process, string, error) {
	name := "local-kms (" + region + ")"
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	// Always give a seed file in our own directory: without KMS_SEED_PATH,
	// local-kms would read /init/seed.yaml if the machine has one.
	seedPath := filepath.Join(dir, "seed.yaml")
	if err := writeSeedFile(seedPath, seeds); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	var probeClient *kms.Client // made once the port is known, then reused
	p, match, err := startProcess(ctx, procSpec{
		name: name,
		path: bin,
		env: mergeEnv(os.Environ(),
			"PORT=0", // local-kms logs the port it bound
			"KMS_REGION="+region,
			"KMS_ACCOUNT_ID="+account,
			"KMS_DATA_PATH="+dataDir,
			"KMS_SEED_PATH="+seedPath,
		),
		dir:       dir,
		logFile:   filepath.Join(dir, "local-kms.log"),
		output:    out,
		timeout:   timeout,
		readyLine: kmsStartedLine,
		probe: func(ctx context.Context, m []string) error {
			if probeClient == nil {
				probeClient = directKMSClient(region, "http://"+hostPort(atoiOrZero(m[1])))
			}
			_, err := probeClient.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)})
			return err
		},
	})
	if err != nil {
		return nil, "", err
	}
	backend := "http://" + hostPort(atoiOrZero(match[1]))
	// local-kms logs a seed file it cannot parse and starts without the keys;
	// make that a start error instead.
	client := probeClient
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, s := range seeds {
		if _, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(s.KeyID)}); err != nil {
			err = fmt.Errorf("start %s: seed key %s not found after start: %w\n%s", name, s.KeyID, err, p.tailSection())
			return nil, "", errors.Join(err, p.stop())
		}
	}
	return p, backend, nil
}

// atoiOrZero parses the digits kmsStartedLine captured.
func atoiOrZero(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// writeSeedFile writes seeds in local-kms's seed format. The file is JSON,
// which is also YAML, so no YAML encoder is needed.
func writeSeedFile(path string, seeds []SeedKey) error {
	type metadata struct {
		KeyID       string `json:"KeyId"`
		Description string `json:"Description,omitempty"`
	}
	type aesKey struct {
		Metadata    metadata `json:"Metadata"`
		BackingKeys []string `json:"BackingKeys"`
	}
	var seed struct {
		Keys struct {
			Symmetric struct {
				Aes []aesKey `json:"Aes"`
			} `json:"Symmetric"`
		} `json:"Keys"`
	}
	seed.Keys.Symmetric.Aes = []aesKey{}
	for _, s := range seeds {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("generate backing key for %s: %w", s.KeyID, err)
		}
		seed.Keys.Symmetric.Aes = append(seed.Keys.Symmetric.Aes, aesKey{
			Metadata:    metadata{KeyID: s.KeyID, Description: s.Description},
			BackingKeys: []string{hex.EncodeToString(b[:])},
		})
	}
	data, err := json.MarshalIndent(seed, "", "  ")
	if err != nil {
		return fmt.Errorf("encode seed file: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write seed file: %w", err)
	}
	return nil
}

// directKMSClient is a client of one local-kms, bypassing the router, with
// retries off; it is used for readiness probes so they do not count.
func directKMSClient(region, endpoint string) *kms.Client {
	return newKMSClient(region, endpoint, func(o *kms.Options) { o.Retryer = aws.NopRetryer{} })
}

// newKMSClient returns a KMS client for region that sends to endpoint.
func newKMSClient(region, endpoint string, optFns ...func(*kms.Options)) *kms.Client {
	return kms.New(kms.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(localAccessKeyID, localSecretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
	}, optFns...)
}

// URL returns the router's base URL, http://127.0.0.1:PORT, the value for
// AWS_ENDPOINT_URL_KMS (or a client's BaseEndpoint) in every region.
func (k *KMS) URL() string { return k.url }

// Router returns the router in front of the local-kms processes, for
// request counts and fault injection.
func (k *KMS) Router() *RegionRouter { return k.router }

// Regions returns the regions served, in the order of KMSOptions.Regions.
func (k *KMS) Regions() []string { return slices.Clone(k.regions) }

// Account returns the account ID in key ARNs.
func (k *KMS) Account() string { return k.account }

// KeyARN returns the ARN local-kms gives keyID in region.
func (k *KMS) KeyARN(region, keyID string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", region, k.account, keyID)
}

// Client returns an aws-sdk-go-v2 KMS client for region that signs with
// static credentials and sends to URL, with the SDK's standard retryer
// unless optFns change it (for example o.Retryer = aws.NopRetryer{}).
// Its requests go through the router, so they are counted and intercepted.
// Every client shares the stand-in's connection pool.
func (k *KMS) Client(region string, optFns ...func(*kms.Options)) *kms.Client {
	return newKMSClient(region, k.url, append([]func(*kms.Options){func(o *kms.Options) { o.HTTPClient = k.http }}, optFns...)...)
}

// Close stops the router and every local-kms and removes their data and
// logs. It is safe to call more than once.
func (k *KMS) Close() error {
	k.closeOnce.Do(func() {
		var errs []error
		if k.server != nil {
			if err := k.server.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close KMS router: %w", err))
			}
		}
		errs = append(errs, stopAll(k.procs))
		if err := os.RemoveAll(k.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove KMS stand-in files: %w", err))
		}
		k.closeErr = errors.Join(errs...)
	})
	return k.closeErr
}

// stopAll stops procs concurrently.
func stopAll(procs []*process) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prefixWriter writes whole lines to w, each prefixed, under a mutex shared
// by the writers of one destination so lines of different processes do not
// interleave.
type prefixWriter struct {
	mu      *sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
}

// Write implements io.Writer; an unterminated last line waits for its end.
func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := slices.Index(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := make([]byte, 0, len(p.prefix)+i+1)
		line = append(append(line, p.prefix...), p.partial[:i+1]...)
		p.partial = p.partial[i+1:]
		if _, err := p.w.Write(line); err != nil {
			return len(b), fmt.Errorf("write output of %s: %w", p.prefix, err)
		}
	}
}
