package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestUnionsHoldEveryModel checks that every field of every parser's model
// of requestParameters and responseElements is a field of the union, with
// the same name, JSON name and type: so the one pass reads the values the
// steps read, and fails where they fail.
func TestUnionsHoldEveryModel(t *testing.T) {
	for _, tc := range []struct {
		union any
		model any
	}{
		{requestUnion{}, CreateKeyRequest{}},
		{requestUnion{}, ReplicateKeyRequest{}},
		{requestUnion{}, TagResourceRequest{}},
		{requestUnion{}, UntagResourceRequest{}},
		{responseUnion{}, CreateKeyResponse{}},
		{responseUnion{}, ReplicateKeyResponse{}},
	} {
		u, m := reflect.TypeOf(tc.union), reflect.TypeOf(tc.model)
		for i := range m.NumField() {
			mf := m.Field(i)
			uf, ok := u.FieldByName(mf.Name)
			switch {
			case !ok:
				t.Errorf("%s.%s: got no field of that name in %s, want one", m.Name(), mf.Name, u.Name())
			case uf.Type != mf.Type || uf.Tag.Get("json") != mf.Tag.Get("json"):
				t.Errorf("%s.%s: got %s `json:%q` in %s, want %s `json:%q`", m.Name(), mf.Name, uf.Type, uf.Tag.Get("json"), u.Name(), mf.Type, mf.Tag.Get("json"))
			}
		}
	}
}

// TestModelsTakeEveryField fills every field of the unions and checks that
// each parser's model of them carries every one of its fields over.
func TestModelsTakeEveryField(t *testing.T) {
	req, resp := &requestUnion{}, &responseUnion{}
	fill(t, reflect.ValueOf(req).Elem())
	fill(t, reflect.ValueOf(resp).Elem())
	for _, tc := range []struct {
		name  string
		union any
		model any
	}{
		{"createKey request", req, req.createKey()},
		{"replicateKey request", req, req.replicateKey()},
		{"tagResource request", req, req.tagResource()},
		{"untagResource request", req, req.untagResource()},
		{"createKey response", resp, resp.createKey()},
		{"replicateKey response", resp, resp.replicateKey()},
	} {
		u, m := reflect.ValueOf(tc.union).Elem(), reflect.ValueOf(tc.model)
		for i := range m.NumField() {
			name := m.Type().Field(i).Name
			if got, want := m.Field(i).Interface(), u.FieldByName(name).Interface(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s: got %v, want %v from the union", tc.name, name, got, want)
			}
		}
	}
}

// fill sets every field of the struct v to a value other than its zero
// value, distinct per field.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Interface().(type) {
		case string:
			f.SetString("value of " + name)
		case bool:
			f.SetBool(true)
		case json.RawMessage:
			f.Set(reflect.ValueOf(json.RawMessage(`"raw ` + name + `"`)))
		case []RequestTag:
			f.Set(reflect.ValueOf([]RequestTag{{TagKey: name, TagValue: "v"}}))
		case []string:
			f.Set(reflect.ValueOf([]string{name}))
		case *KeyMetadata:
			f.Set(reflect.ValueOf(&KeyMetadata{ARN: "arn of " + name}))
		default:
			t.Fatalf("fill: field %s of type %s: add a case", name, f.Type())
		}
	}
}

// TestOnePassAgreesWithTwoSteps decodes every fixture, and each also
// compacted (as EventBridge delivers events) and as a bare record, in one
// pass and in steps, and checks the results and errors are the same.
func TestOnePassAgreesWithTwoSteps(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 40 {
		t.Fatalf("got %d fixtures, want the 40 or more of testdata", len(paths))
	}
	for _, path := range append(paths, corpus...) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(path) != ".json" {
			raw = corpusEntry(t, path, raw)
		}
		inputs := [][]byte{raw}
		var compact bytes.Buffer
		if json.Compact(&compact, raw) == nil {
			inputs = append(inputs, compact.Bytes())
		}
		var env struct{ Detail json.RawMessage }
		if json.Unmarshal(raw, &env) == nil && len(env.Detail) > 0 {
			inputs = append(inputs, env.Detail)
		}
		for i, in := range inputs {
			name := fmt.Sprintf("%s/%d", filepath.Base(path), i)
			if diff := compareDecoders(in); diff != "" {
				t.Errorf("%s: %s", name, diff)
			}
		}
	}
}

// corpusEntry is the input a file of Go's fuzz corpus holds: its second
// line is []byte("...").
func corpusEntry(t *testing.T, path string, file []byte) []byte {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: got %q, want a go test fuzz v1 file of one []byte", path, file)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// FuzzOnePass checks the agreement of TestOnePassAgreesWithTwoSteps on
// arbitrary input, seeded with every fixture.
func FuzzOnePass(f *testing.F) {
	AddFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if diff := compareDecoders(raw); diff != "" {
			t.Error(diff)
		}
	})
}

// compareDecoders decodes raw as an event and as a bare record, in one pass
// and in steps, and describes the first difference; "" when there is none.
func compareDecoders(raw []byte) string {
	for _, fn := range []struct {
		name   string
		decode func([]byte, bool) (Decoded, error)
	}{{"decode", decode}, {"decodeRecord", decodeRecord}} {
		one, oneErr := fn.decode(raw, true)
		steps, stepsErr := fn.decode(raw, false)
		if !reflect.DeepEqual(one, steps) {
			return fmt.Sprintf("%s: got %+v in one pass, want %+v as in steps", fn.name, one, steps)
		}
		if fmt.Sprint(oneErr) != fmt.Sprint(stepsErr) {
			return fmt.Sprintf("%s: got error %v in one pass, want %v as in steps", fn.name, oneErr, stepsErr)
		}
	}
	return ""
}
