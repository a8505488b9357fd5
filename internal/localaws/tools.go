package localaws

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is the module whose go.mod RepoRoot looks for.
const ModulePath = "github.com/kms-autotagger/kms-autotagger"

// ToolsBinEnv names the environment variable that, when set, overrides the
// directory ToolPath looks in (by default <repo root>/.tools/bin).
const ToolsBinEnv = "AUTOTAGGER_TOOLS_BIN"

// Names of the pinned stand-in binaries ToolPath finds.
const (
	// LocalKMSTool is the local-kms binary (github.com/nsmithuk/local-kms).
	LocalKMSTool = "local-kms"
	// RIETool is the Lambda Runtime Interface Emulator binary.
	RIETool = "aws-lambda-rie"
)

// RepoRoot returns the directory of this repository's go.mod, found by
// walking up from the working directory. A go.mod of another module on the
// way (such as one under testdata) is passed over.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for dir := wd; ; {
		if modulePathOf(filepath.Join(dir, "go.mod")) == ModulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod of module %s in %s or any parent", ModulePath, wd)
		}
		dir = parent
	}
}

// modulePathOf returns the module path declared in the go.mod at path, or ""
// when the file is missing or declares none.
func modulePathOf(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// ToolsDir returns the directory ToolPath looks in: $AUTOTAGGER_TOOLS_BIN when
// set, else <repo root>/.tools/bin.
func ToolsDir() (string, error) {
	if dir := os.Getenv(ToolsBinEnv); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools", "bin"), nil
}

// ToolPath returns the path of the pinned binary name (LocalKMSTool or
// RIETool) in ToolsDir. The error for a missing or non-executable binary
// says to run `make tools`.
func ToolPath(name string) (string, error) {
	dir, err := ToolsDir()
	if err != nil {
		return "", fmt.Errorf("locate %s: %w", name, err)
	}
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("%s not found in %s: run `make tools`", name, dir)
	case err != nil:
		return "", fmt.Errorf("%s in %s: %w: run `make tools`", name, dir, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s in %s is not an executable file: run `make tools`", name, dir)
	}
	return path, nil
}

// VenvEnv names the environment variable that, when set, overrides the
// Python venv VenvPython uses (by default <repo root>/.tools/venv).
const VenvEnv = "AUTOTAGGER_VENV"

// VenvPython returns the python of the venv `make tools` makes from
// tools/requirements.txt (moto, cfn-lint, aws-sam-translator): $AUTOTAGGER_VENV
// when set, else <repo root>/.tools/venv. The error for a missing venv says
// to run `make tools`.
func VenvPython() (string, error) {
	dir := os.Getenv(VenvEnv)
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", fmt.Errorf("locate the tools venv: %w", err)
		}
		dir = filepath.Join(root, ".tools", "venv")
	}
	python := filepath.Join(dir, "bin", "python")
	if _, err := os.Stat(python); err != nil {
		return "", fmt.Errorf("the Python tools venv %s is missing (%w): run `make tools`", dir, err)
	}
	return python, nil
}

// CheckTools reports every stand-in that cannot be started: a missing
// local-kms or aws-lambda-rie binary, or a missing Python tools venv (moto,
// which serves SQS, STS and CloudTrail's trail APIs). It returns nil when
// all are present.
func CheckTools() error {
	var errs []error
	for _, name := range []string{LocalKMSTool, RIETool} {
		if _, err := ToolPath(name); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := VenvPython(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
