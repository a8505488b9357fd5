package bench_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// TestLambdaBuildLeavesOutCLI lists the packages of the Lambda build (tags
// lambda.norpc,lambdaonly) and checks that it has the clients the function
// uses and none of the command line's.
func TestLambdaBuildLeavesOutCLI(t *testing.T) {
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
	for _, p := range []string{"config", "service/kms", "service/sqs", "service/sts", "service/cloudtrail", "credentials/stscreds"} {
		if !deps[sdk+p] {
			t.Errorf("got no %s in the Lambda build, want it: the function uses it", sdk+p)
		}
	}
	for _, p := range []string{"github.com/kms-autotagger/kms-autotagger/internal/cli", "golang.org/x/term"} {
		if deps[p] {
			t.Errorf("got %s in the Lambda build, want it left out (the CLI is built without the tag lambdaonly)", p)
		}
	}
}
