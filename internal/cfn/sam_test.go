package cfn_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
)

// translation asks tools/samtransform.py for the CloudFormation of one
// template and set of parameter values.
type translation struct {
	Template   string            `json:"template"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Region     string            `json:"region,omitempty"`
	CodeURI    string            `json:"code_uri,omitempty"`
}

// samTranslator is one `samtransform.py --serve` process: importing the
// translator takes most of the time of a run, so one process answers every
// translation of the test binary. Answers are cached.
type samTranslator struct {
	once     sync.Once
	startErr error
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   *bufio.Reader
	stderr   localawstest.SyncBuffer

	mu    sync.Mutex
	cache map[string][]byte
}

func (s *samTranslator) start() error {
	python, err := localaws.VenvPython()
	if err != nil {
		return err
	}
	script, err := filepath.Abs(samTransform)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(python, script, "--serve")
	s.cmd.Stderr = &s.stderr
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.stdout = bufio.NewReader(out)
	return s.cmd.Start()
}

// translate returns the translator's CloudFormation JSON for req.
func (s *samTranslator) translate(req translation) ([]byte, error) {
	s.once.Do(func() { s.startErr = s.start() })
	if s.startErr != nil {
		return nil, fmt.Errorf("start %s: %w", samTransform, s.startErr)
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if out, ok := s.cache[string(line)]; ok {
		return out, nil
	}
	if _, err := s.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("%s: %w (stderr: %s)", samTransform, err, s.stderr.String())
	}
	answer, err := s.stdout.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("%s: %w (stderr: %s)", samTransform, err, s.stderr.String())
	}
	var resp struct {
		Template json.RawMessage `json:"template"`
		Error    string          `json:"error"`
	}
	if err := json.Unmarshal(answer, &resp); err != nil {
		return nil, fmt.Errorf("%s answered %.200q: %w", samTransform, answer, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("%s: %s", samTransform, resp.Error)
	}
	if s.cache == nil {
		s.cache = map[string][]byte{}
	}
	s.cache[string(line)] = resp.Template
	return resp.Template, nil
}

func (s *samTranslator) close() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.stdin.Close()
	if err := s.cmd.Wait(); err != nil {
		return fmt.Errorf("%s --serve: %w (stderr: %s)", samTransform, err, strings.TrimSpace(s.stderr.String()))
	}
	return nil
}

// translateJSON returns the CloudFormation the SAM translator makes of req.
func translateJSON(t testing.TB, req translation) []byte {
	t.Helper()
	abs, err := filepath.Abs(req.Template)
	if err != nil {
		t.Fatal(err)
	}
	req.Template = abs
	if req.Region == "" {
		req.Region = homeRegion
	}
	out, err := shared.sam.translate(req)
	if err != nil {
		t.Fatalf("translate %s: %v", filepath.Base(req.Template), err)
	}
	return out
}

// cfnTemplate is the part of a CloudFormation template the tests read.
type cfnTemplate struct {
	FormatVersion string               `json:"AWSTemplateFormatVersion"`
	Transform     any                  `json:"Transform"`
	Parameters    map[string]parameter `json:"Parameters"`
	Conditions    map[string]any       `json:"Conditions"`
	Resources     map[string]resource  `json:"Resources"`
	Outputs       map[string]output    `json:"Outputs"`
	// raw is the whole template, decoded generically.
	raw map[string]any
}

type parameter struct {
	Type          string `json:"Type"`
	Default       any    `json:"Default"`
	AllowedValues []any  `json:"AllowedValues"`
	// AllowedPattern, MinLength, ... as the template writes them.
	AllowedPattern string      `json:"AllowedPattern"`
	MinLength      json.Number `json:"MinLength"`
	MaxLength      json.Number `json:"MaxLength"`
	NoEcho         bool        `json:"NoEcho"`
}

// HasDefault reports whether the parameter has a Default.
func (p parameter) HasDefault() bool { return p.Default != nil }

// DefaultString is the Default as CloudFormation passes it on: a string.
func (p parameter) DefaultString() string { return scalarString(p.Default) }

// Allowed returns AllowedValues as strings, nil when there are none.
func (p parameter) Allowed() []string {
	if p.AllowedValues == nil {
		return nil
	}
	out := make([]string, len(p.AllowedValues))
	for i, v := range p.AllowedValues {
		out[i] = scalarString(v)
	}
	return out
}

type resource struct {
	Type       string         `json:"Type"`
	Condition  string         `json:"Condition"`
	DependsOn  any            `json:"DependsOn"`
	Metadata   map[string]any `json:"Metadata"`
	Properties map[string]any `json:"Properties"`
}

// DependsOnList returns DependsOn as a list, whether written as one name or
// a list.
func (r resource) DependsOnList() []string {
	switch v := r.DependsOn.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, el := range v {
			out = append(out, scalarString(el))
		}
		return out
	}
	return nil
}

type output struct {
	Condition string `json:"Condition"`
	Value     any    `json:"Value"`
}

// scalarString returns a JSON scalar (decoded with UseNumber) as a string.
func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// decodeJSON decodes data into v with json.Number for numbers.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// parseTemplate decodes a CloudFormation template.
func parseTemplate(t testing.TB, data []byte) *cfnTemplate {
	t.Helper()
	var tpl cfnTemplate
	if err := decodeJSON(data, &tpl); err != nil {
		t.Fatalf("decoding the translated template: %v", err)
	}
	if err := decodeJSON(data, &tpl.raw); err != nil {
		t.Fatalf("decoding the translated template: %v", err)
	}
	return &tpl
}

// translated returns what the SAM translator makes of the template at path
// with the parameter values params (the others at their defaults), for a
// stack in homeRegion of centralAccount whose code `sam package` uploaded.
func translated(t testing.TB, path string, params map[string]string) *cfnTemplate {
	t.Helper()
	return parseTemplate(t, translateJSON(t, translation{Template: path, Parameters: params, CodeURI: codeURI(centralAccount)}))
}

// resourcesOfType returns the logical ids of tpl's resources of type typ.
func (tpl *cfnTemplate) resourcesOfType(typ string) []string {
	var ids []string
	for id, r := range tpl.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sortStrings(ids)
	return ids
}

// TestSamTransformCommand checks samtransform.py as a command: a template
// and parameter values in, the translation out, as --serve answers it; the
// translator's complaint and status 1 for a template it refuses.
func TestSamTransformCommand(t *testing.T) {
	python, err := localaws.VenvPython()
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{"TamperRepair": "false", "StaticTags": "Team=core,CostCenter=42"}
	args := []string{samTransform, templatePath, "--region", homeRegion, "--code-uri", codeURI(centralAccount)}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		args = append(args, "--parameter", k+"="+params[k])
	}
	var stderr bytes.Buffer
	cmd := exec.Command(python, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	served := translateJSON(t, translation{Template: templatePath, Parameters: params, CodeURI: codeURI(centralAccount)})
	if !jsonEqual(t, out, served) {
		t.Errorf("the command's translation differs from --serve's:\n%.300s\n%.300s", out, served)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: got %q, want nothing", stderr.String())
	}

	// Without --code-uri, the function's CodeUri is the local ".": the
	// translator takes only S3 locations.
	stderr.Reset()
	cmd = exec.Command(python, samTransform, templatePath)
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || len(out) != 0 {
		t.Errorf("without --code-uri: got status %v and %d bytes out, want status 1 and none", err, len(out))
	}
	if got := stderr.String(); !strings.Contains(got, "CodeUri") {
		t.Errorf("without --code-uri: stderr %q, want the translator's complaint about CodeUri", got)
	}
}
