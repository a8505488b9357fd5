package bench_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// TestLambdaBuildLeavesOutConfig lists the packages of the Lambda build
// (tags lambda.norpc,lambdaonly) and checks that the SDK's config package and
// the credential providers it links are not among them: the function reads
// its AWS configuration from the environment (internal/awsenv), and those
// packages would add 1.4 MB to the bootstrap and about 1 ms to every cold
// start (docs/PERFORMANCE.md). Nor are the SDK's schemas packages, which the
// versions of go.mod keep out.
func TestLambdaBuildLeavesOutConfig(t *testing.T) {
	root, err := localaws.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc,lambdaonly", "./cmd/autotagger")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	const sdk = "github.com/aws/aws-sdk-go-v2/"
	for _, p := range []string{"service/kms", "service/sqs", "service/sts", "service/cloudtrail", "credentials/stscreds"} {
		if !deps[sdk+p] {
			t.Errorf("got no %s in the Lambda build, want it: the function uses it", sdk+p)
		}
	}
	for _, p := range []string{"config", "credentials/ssocreds", "credentials/logincreds", "credentials/processcreds", "credentials/ec2rolecreds", "credentials/endpointcreds", "feature/ec2/imds", "service/sso", "service/ssooidc", "service/signin"} {
		if deps[sdk+p] {
			t.Errorf("got %s in the Lambda build, want it left out", sdk+p)
		}
	}
	// The service clients stay below schema-based serialisation: its
	// schemas packages cost 1.2 ms of every cold start. Taking a release of
	// kms, sqs or sts that brings them back is a decision about the
	// cold-start target, not a routine update: see "An SDK from before
	// schema-based serialisation" in docs/PERFORMANCE.md.
	for p := range deps {
		if strings.HasPrefix(p, sdk+"service/") && strings.HasSuffix(p, "/schemas") {
			t.Errorf("got %s in the Lambda build, want no schemas package: it adds to every cold start (docs/PERFORMANCE.md); a release of kms, sqs or sts from before schema-based serialisation keeps it out", p)
		}
	}
	for _, p := range []string{"github.com/kms-autotagger/kms-autotagger/internal/cli", "golang.org/x/term"} {
		if deps[p] {
			t.Errorf("got %s in the Lambda build, want it left out (the CLI is built without the tag lambdaonly)", p)
		}
	}
}
