package cfn

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed CloudFormation or AWS SAM template. Values inside it
// are generic trees: map[string]any, []any, string, bool, int, float64 and
// nil, with every intrinsic function in its long form.
type Template struct {
	// FormatVersion is AWSTemplateFormatVersion, empty when absent.
	FormatVersion string
	// Description is the template's Description, empty when absent.
	Description string
	// Transform lists the transforms the template names, in order.
	Transform []string
	// Parameters are the template's parameters by logical name.
	Parameters map[string]Parameter
	// Mappings is the Mappings section: map name, top-level key, second-level key.
	Mappings map[string]any
	// Conditions holds each condition's expression by condition name.
	Conditions map[string]any
	// Resources are the template's resources by logical id.
	Resources map[string]Resource
	// Outputs are the template's outputs by logical name.
	Outputs map[string]Output
	// Tree is the whole template as a generic tree.
	Tree map[string]any
}

// Parameter is one entry of the Parameters section.
type Parameter struct {
	// Type is the parameter type: String, Number, CommaDelimitedList, ...
	Type string
	// Default is the default value as CloudFormation passes it: a string,
	// whatever scalar the template wrote.
	Default string
	// HasDefault says whether the parameter has a Default at all; an empty
	// Default is still a default.
	HasDefault bool
	// Description is the parameter's description.
	Description string
	// AllowedValues lists the allowed values as strings, nil when unrestricted.
	AllowedValues []string
	// AllowedPattern is the regular expression a value must match, if any.
	AllowedPattern string
	// Properties holds every property of the parameter as written.
	Properties map[string]any
}

// Resource is one entry of the Resources section.
type Resource struct {
	// Type is the resource type, e.g. AWS::SQS::Queue.
	Type string
	// Properties holds the resource's properties; nil when it has none.
	Properties map[string]any
	// Condition names the condition the resource is created under, if any.
	Condition string
	// DependsOn lists the resources this one explicitly depends on.
	DependsOn []string
	// Metadata is the resource's Metadata attribute; nil when absent.
	Metadata map[string]any
	// DeletionPolicy is the DeletionPolicy attribute, empty when absent.
	DeletionPolicy string
	// UpdateReplacePolicy is the UpdateReplacePolicy attribute, empty when absent.
	UpdateReplacePolicy string
}

// Property returns the property at path below Properties; see Lookup.
func (r Resource) Property(path ...string) (any, bool) {
	return Lookup(r.Properties, path...)
}

// Output is one entry of the Outputs section.
type Output struct {
	// Description is the output's description.
	Description string
	// Value is the output's value.
	Value any
	// Condition names the condition the output exists under, if any.
	Condition string
	// Export is the Export property, nil when absent.
	Export any
}

// Load reads and parses the template file at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a template written in YAML or JSON. Short-form tags become
// their long form: !Ref X is {"Ref": "X"}, !GetAtt A.B is
// {"Fn::GetAtt": ["A", "B"]}, !Sub s is {"Fn::Sub": s}, and so on. Unknown
// tags, duplicate keys and YAML merge keys are errors, as they are for
// CloudFormation.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("cfn: empty template")
	}
	tree, err := convert(doc.Content[0], 0)
	if err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	root, ok := tree.(map[string]any)
	if !ok {
		return nil, errors.New("cfn: template is not a mapping")
	}
	t := &Template{
		Parameters: map[string]Parameter{},
		Mappings:   map[string]any{},
		Conditions: map[string]any{},
		Resources:  map[string]Resource{},
		Outputs:    map[string]Output{},
		Tree:       root,
	}
	if err := t.build(root); err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	return t, nil
}

func (t *Template) build(root map[string]any) error {
	var err error
	if t.FormatVersion, err = optionalString(root, "AWSTemplateFormatVersion"); err != nil {
		return err
	}
	if t.Description, err = optionalString(root, "Description"); err != nil {
		return err
	}
	if v, ok := root["Transform"]; ok {
		names, ok := Strings(v)
		if !ok {
			return errors.New("Transform must be a name or a list of names")
		}
		t.Transform = names
	}
	params, err := optionalMap(root, "Parameters")
	if err != nil {
		return err
	}
	for name, v := range params {
		p, err := parseParameter(v)
		if err != nil {
			return fmt.Errorf("parameter %s: %w", name, err)
		}
		t.Parameters[name] = p
	}
	if t.Mappings, err = optionalMap(root, "Mappings"); err != nil {
		return err
	}
	if t.Conditions, err = optionalMap(root, "Conditions"); err != nil {
		return err
	}
	resources, err := optionalMap(root, "Resources")
	if err != nil {
		return err
	}
	if len(resources) == 0 {
		return errors.New("template has no Resources")
	}
	for id, v := range resources {
		r, err := parseResource(v)
		if err != nil {
			return fmt.Errorf("resource %s: %w", id, err)
		}
		t.Resources[id] = r
	}
	outputs, err := optionalMap(root, "Outputs")
	if err != nil {
		return err
	}
	for name, v := range outputs {
		o, err := parseOutput(v)
		if err != nil {
			return fmt.Errorf("output %s: %w", name, err)
		}
		t.Outputs[name] = o
	}
	return nil
}

func parseParameter(v any) (Parameter, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Parameter{}, errors.New("not a mapping")
	}
	p := Parameter{Properties: m}
	var err error
	if p.Type, err = optionalString(m, "Type"); err != nil {
		return Parameter{}, err
	}
	if p.Type == "" {
		return Parameter{}, errors.New("no Type")
	}
	if d, ok := m["Default"]; ok {
		s, ok := scalarString(d)
		if !ok {
			return Parameter{}, errors.New("Default is not a scalar")
		}
		p.Default, p.HasDefault = s, true
	}
	if p.Description, err = optionalString(m, "Description"); err != nil {
		return Parameter{}, err
	}
	if p.AllowedPattern, err = optionalString(m, "AllowedPattern"); err != nil {
		return Parameter{}, err
	}
	if av, ok := m["AllowedValues"]; ok {
		list, ok := av.([]any)
		if !ok {
			return Parameter{}, errors.New("AllowedValues is not a list")
		}
		for _, el := range list {
			s, ok := scalarString(el)
			if !ok {
				return Parameter{}, errors.New("AllowedValues holds a value that is not a scalar")
			}
			p.AllowedValues = append(p.AllowedValues, s)
		}
	}
	return p, nil
}

func parseResource(v any) (Resource, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Resource{}, errors.New("not a mapping")
	}
	var r Resource
	var err error
	if r.Type, err = optionalString(m, "Type"); err != nil {
		return Resource{}, err
	}
	if r.Type == "" {
		return Resource{}, errors.New("no Type")
	}
	if r.Properties, err = optionalMap(m, "Properties"); err != nil {
		return Resource{}, err
	}
	if r.Metadata, err = optionalMap(m, "Metadata"); err != nil {
		return Resource{}, err
	}
	if r.Condition, err = optionalString(m, "Condition"); err != nil {
		return Resource{}, err
	}
	if r.DeletionPolicy, err = optionalString(m, "DeletionPolicy"); err != nil {
		return Resource{}, err
	}
	if r.UpdateReplacePolicy, err = optionalString(m, "UpdateReplacePolicy"); err != nil {
		return Resource{}, err
	}
	if d, ok := m["DependsOn"]; ok {
		if r.DependsOn, ok = Strings(d); !ok {
			return Resource{}, errors.New("DependsOn must be a name or a list of names")
		}
	}
	return r, nil
}

func parseOutput(v any) (Output, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Output{}, errors.New("not a mapping")
	}
	var o Output
	var err error
	if o.Value, ok = m["Value"]; !ok {
		return Output{}, errors.New("no Value")
	}
	if o.Description, err = optionalString(m, "Description"); err != nil {
		return Output{}, err
	}
	if o.Condition, err = optionalString(m, "Condition"); err != nil {
		return Output{}, err
	}
	o.Export = m["Export"]
	return o, nil
}

func optionalString(m map[string]any, key string) (string, error) {
	v, ok := m[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return s, nil
}

func optionalMap(m map[string]any, key string) (map[string]any, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a mapping", key)
	}
	return sub, nil
}

// ResourcesOfType returns the logical ids of the resources of type typ, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Lookup follows path from v through nested values: a map step takes the
// element under that key, a list step takes the element at that decimal
// index. It reports false when a step is missing.
func Lookup(v any, path ...string) (any, bool) {
	for _, step := range path {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[step]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// Strings returns v as a list of strings: a string is a list of one, a list
// must hold strings only.
func Strings(v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, el := range x {
			s, ok := el.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	default:
		return nil, false
	}
}

// Int returns v as an integer, accepting what CloudFormation accepts for a
// number: an integer, a float without a fraction, or a string holding an
// integer.
func Int(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > 1<<63-1 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x != float64(int64(x)) {
			return 0, false
		}
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	default:
		return 0, false
	}
}

// Intrinsic reports whether v is an intrinsic function call in long form, a
// map with the single key Ref, Condition (with a name) or Fn::<Name>, and
// returns the function's name and argument.
func Intrinsic(v any) (fn string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		switch {
		case k == "Ref", strings.HasPrefix(k, "Fn::"):
			return k, a, true
		case k == "Condition":
			if _, isName := a.(string); isName {
				return k, a, true
			}
		}
	}
	return "", nil, false
}

var pseudoParameters = map[string]bool{
	"AWS::AccountId":        true,
	"AWS::NotificationARNs": true,
	"AWS::NoValue":          true,
	"AWS::Partition":        true,
	"AWS::Region":           true,
	"AWS::StackId":          true,
	"AWS::StackName":        true,
	"AWS::URLSuffix":        true,
}

// IsPseudoParameter reports whether name is one of CloudFormation's pseudo
// parameters (AWS::Region, AWS::Partition, ...).
func IsPseudoParameter(name string) bool {
	return pseudoParameters[name]
}

// SubVariables returns the variable names a Fn::Sub string refers to, in
// order: "Name" for ${Name} and "Name.Attr" for ${Name.Attr}. ${!Literal}
// is an escaped literal, not a variable.
func SubVariables(s string) ([]string, error) {
	var names []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return names, nil
		}
		rest := s[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return nil, fmt.Errorf("unterminated ${ in %q", s)
		}
		name := rest[:j]
		s = rest[j+1:]
		if strings.HasPrefix(name, "!") {
			continue
		}
		if name == "" {
			return nil, errors.New("empty ${} in Fn::Sub string")
		}
		names = append(names, name)
	}
}

// ReferenceKind says how a template refers to a name.
type ReferenceKind string

// The ways a template refers to names.
const (
	// ByRef is {"Ref": Name}: a parameter, resource or pseudo parameter.
	ByRef ReferenceKind = "Ref"
	// ByGetAtt is {"Fn::GetAtt": [Name, Attribute]}: a resource.
	ByGetAtt ReferenceKind = "Fn::GetAtt"
	// BySub is ${Name} or ${Name.Attribute} in a Fn::Sub string.
	BySub ReferenceKind = "Fn::Sub"
	// ByCondition is a condition named by a resource or output Condition
	// attribute, by Fn::If, or by the Condition function.
	ByCondition ReferenceKind = "Condition"
	// ByDependsOn is a resource named in DependsOn.
	ByDependsOn ReferenceKind = "DependsOn"
	// ByFindInMap is the mapping named by Fn::FindInMap.
	ByFindInMap ReferenceKind = "Fn::FindInMap"
)

// Reference is one place where a template names a parameter, resource,
// condition or mapping.
type Reference struct {
	// Kind is how the name is used.
	Kind ReferenceKind
	// Name is the name referred to.
	Name string
	// Attribute is the attribute of a Fn::GetAtt or ${Name.Attribute}.
	Attribute string
	// Path says where the reference is, e.g. Resources.Fn.Properties.Role.
	Path string
}

// String describes the reference for messages.
func (r Reference) String() string {
	name := r.Name
	if r.Attribute != "" {
		name += "." + r.Attribute
	}
	return fmt.Sprintf("%s %s at %s", r.Kind, name, r.Path)
}

// References returns every reference the template makes, sorted by path.
// Variables that a Fn::Sub defines in its own variable map are not
// references. A malformed Ref, Fn::GetAtt, Fn::Sub, Fn::If or
// Fn::FindInMap is an error.
func (t *Template) References() ([]Reference, error) {
	w := &refWalker{}
	if err := w.walk(t.Tree, ""); err != nil {
		return nil, err
	}
	for id, r := range t.Resources {
		if r.Condition != "" {
			w.add(ByCondition, r.Condition, "", "Resources."+id+".Condition")
		}
		for _, d := range r.DependsOn {
			w.add(ByDependsOn, d, "", "Resources."+id+".DependsOn")
		}
	}
	for name, o := range t.Outputs {
		if o.Condition != "" {
			w.add(ByCondition, o.Condition, "", "Outputs."+name+".Condition")
		}
	}
	sort.SliceStable(w.refs, func(i, j int) bool {
		a, b := w.refs[i], w.refs[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Name < b.Name
	})
	return w.refs, nil
}

// Undefined returns the references to names the template does not define:
// a Ref or ${Name} that is no parameter, resource or pseudo parameter, a
// Fn::GetAtt or ${Name.Attribute} or DependsOn that is no resource, a
// condition that is not in Conditions, a mapping that is not in Mappings.
// Resources that a transform would add (SAM's implicit roles, for example)
// are not known, so references to them are reported too.
func (t *Template) Undefined() ([]Reference, error) {
	refs, err := t.References()
	if err != nil {
		return nil, err
	}
	var out []Reference
	for _, r := range refs {
		if !t.defines(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (t *Template) defines(r Reference) bool {
	_, isResource := t.Resources[r.Name]
	_, isParameter := t.Parameters[r.Name]
	switch r.Kind {
	case ByRef:
		return isResource || isParameter || IsPseudoParameter(r.Name)
	case BySub:
		if r.Attribute != "" {
			return isResource
		}
		return isResource || isParameter || IsPseudoParameter(r.Name)
	case ByGetAtt, ByDependsOn:
		return isResource
	case ByCondition:
		_, ok := t.Conditions[r.Name]
		return ok
	case ByFindInMap:
		_, ok := t.Mappings[r.Name]
		return ok
	default:
		return false
	}
}

type refWalker struct {
	refs []Reference
}

func (w *refWalker) add(kind ReferenceKind, name, attr, path string) {
	w.refs = append(w.refs, Reference{Kind: kind, Name: name, Attribute: attr, Path: path})
}

func (w *refWalker) walk(v any, path string) error {
	switch x := v.(type) {
	case map[string]any:
		if fn, arg, ok := Intrinsic(x); ok {
			return w.intrinsic(fn, arg, join(path, fn))
		}
		for _, k := range sortedKeys(x) {
			if err := w.walk(x[k], join(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, el := range x {
			if err := w.walk(el, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *refWalker) intrinsic(fn string, arg any, path string) error {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return fmt.Errorf("%s: Ref takes a name", path)
		}
		w.add(ByRef, name, "", path)
		return nil
	case "Condition":
		w.add(ByCondition, arg.(string), "", path)
		return nil
	case "Fn::GetAtt":
		res, attr, rest, err := getAttArgs(arg)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		w.add(ByGetAtt, res, attr, path)
		return w.walk(rest, path)
	case "Fn::Sub":
		s, vars, err := subArgs(arg)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		names, err := SubVariables(s)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, n := range names {
			if _, local := vars[n]; local {
				continue
			}
			name, attr, _ := strings.Cut(n, ".")
			w.add(BySub, name, attr, path)
		}
		return w.walk(vars, path)
	case "Fn::If":
		list, ok := arg.([]any)
		if !ok || len(list) != 3 {
			return fmt.Errorf("%s: Fn::If takes a condition name and two values", path)
		}
		name, ok := list[0].(string)
		if !ok {
			return fmt.Errorf("%s: Fn::If takes a condition name first", path)
		}
		w.add(ByCondition, name, "", path)
		return w.walk(list[1:], path)
	case "Fn::FindInMap":
		list, ok := arg.([]any)
		if !ok || len(list) < 3 {
			return fmt.Errorf("%s: Fn::FindInMap takes a map name and two keys", path)
		}
		if name, ok := list[0].(string); ok {
			w.add(ByFindInMap, name, "", path)
		} else if err := w.walk(list[0], path); err != nil {
			return err
		}
		return w.walk(list[1:], path)
	default:
		return w.walk(arg, path)
	}
}

// getAttArgs splits a long-form Fn::GetAtt argument into the resource, the
// attribute when it is a literal, and what is left to walk.
func getAttArgs(arg any) (res, attr string, rest any, err error) {
	list, ok := arg.([]any)
	if !ok || len(list) != 2 {
		return "", "", nil, errors.New("Fn::GetAtt takes a resource and an attribute")
	}
	res, ok = list[0].(string)
	if !ok || res == "" {
		return "", "", nil, errors.New("Fn::GetAtt takes a resource name first")
	}
	if attr, ok = list[1].(string); ok {
		return res, attr, nil, nil
	}
	return res, "", list[1], nil
}

// subArgs splits a Fn::Sub argument into its string and its variable map.
func subArgs(arg any) (string, map[string]any, error) {
	switch x := arg.(type) {
	case string:
		return x, nil, nil
	case []any:
		if len(x) == 2 {
			s, okS := x[0].(string)
			vars, okV := x[1].(map[string]any)
			if okS && okV {
				return s, vars, nil
			}
		}
	}
	return "", nil, errors.New("Fn::Sub takes a string, or a string and a variable map")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// scalarString renders a scalar the way CloudFormation passes it on: as a
// string.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	default:
		return "", false
	}
}

// shortTags maps CloudFormation's YAML short-form tags to the function names
// of the long form.
var shortTags = map[string]string{
	"!Ref":         "Ref",
	"!Condition":   "Condition",
	"!GetAtt":      "Fn::GetAtt",
	"!Sub":         "Fn::Sub",
	"!If":          "Fn::If",
	"!Equals":      "Fn::Equals",
	"!Not":         "Fn::Not",
	"!And":         "Fn::And",
	"!Or":          "Fn::Or",
	"!Join":        "Fn::Join",
	"!Split":       "Fn::Split",
	"!Select":      "Fn::Select",
	"!FindInMap":   "Fn::FindInMap",
	"!ImportValue": "Fn::ImportValue",
	"!Base64":      "Fn::Base64",
	"!GetAZs":      "Fn::GetAZs",
	"!Cidr":        "Fn::Cidr",
}

// maxDepth bounds the nesting of a template, which also stops an alias that
// refers to its own anchor.
const maxDepth = 256

func convert(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d levels", n.Line, maxDepth)
	}
	if n.Kind == yaml.AliasNode {
		return convert(n.Alias, depth+1)
	}
	if fn, ok := shortTags[n.Tag]; ok {
		return convertShort(n, fn, depth)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return convertScalar(n)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: keys must be plain scalars (no merge keys)", k.Line)
			}
			if strings.HasPrefix(k.Tag, "!") && !strings.HasPrefix(k.Tag, "!!") {
				return nil, fmt.Errorf("line %d: tag %s on a key", k.Line, k.Tag)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			val, err := convert(v, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
}

func convertScalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		// CloudFormation reads dates such as 2010-09-09 as strings.
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("line %d: unsupported tag %s", n.Line, n.ShortTag())
	}
}

func convertShort(n *yaml.Node, fn string, depth int) (any, error) {
	switch fn {
	case "Ref", "Condition":
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %s takes a name", n.Line, n.Tag)
		}
		return map[string]any{fn: n.Value}, nil
	case "Fn::GetAtt":
		if n.Kind == yaml.ScalarNode {
			res, attr, ok := strings.Cut(n.Value, ".")
			if !ok || res == "" || attr == "" {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
			}
			return map[string]any{fn: []any{res, attr}}, nil
		}
	}
	if n.Kind == yaml.ScalarNode {
		return map[string]any{fn: n.Value}, nil
	}
	untagged := *n
	untagged.Tag = ""
	arg, err := convert(&untagged, depth+1)
	if err != nil {
		return nil, err
	}
	return map[string]any{fn: arg}, nil
}

// Evaluate computes v, a value taken from the template, as CloudFormation
// would for a stack created with the given values, and reports whether it is
// present at all (false for AWS::NoValue). Lists and maps are evaluated
// element by element, dropping AWS::NoValue elements.
//
// values holds a parameter's value under its name (a string; a list
// parameter also takes a []string or []any), a pseudo parameter's under its
// name (e.g. "AWS::Partition"), a resource's Ref value under its logical id
// and a Fn::GetAtt value under "LogicalId.Attribute". Parameters left out
// take their Default; anything else left out is an error. Ref, Fn::GetAtt,
// Fn::Sub, Fn::Join, Fn::Split, Fn::Select, Fn::If, Fn::FindInMap and the
// condition functions are evaluated; other functions are an error.
func (t *Template) Evaluate(v any, values map[string]any) (result any, present bool, err error) {
	e := &evaluator{t: t, values: values, conds: map[string]bool{}, active: map[string]bool{}}
	return e.eval(v, 0)
}

// Condition evaluates the named condition for the given values; see Evaluate.
func (t *Template) Condition(name string, values map[string]any) (bool, error) {
	e := &evaluator{t: t, values: values, conds: map[string]bool{}, active: map[string]bool{}}
	return e.condition(name, 0)
}

type evaluator struct {
	t      *Template
	values map[string]any
	conds  map[string]bool
	active map[string]bool
}

func (e *evaluator) eval(v any, depth int) (any, bool, error) {
	if depth > maxDepth {
		return nil, false, fmt.Errorf("cfn: nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		if fn, arg, ok := Intrinsic(x); ok {
			return e.call(fn, arg, depth+1)
		}
		out := make(map[string]any, len(x))
		for k, el := range x {
			r, present, err := e.eval(el, depth+1)
			if err != nil {
				return nil, false, err
			}
			if present {
				out[k] = r
			}
		}
		return out, true, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, el := range x {
			r, present, err := e.eval(el, depth+1)
			if err != nil {
				return nil, false, err
			}
			if present {
				out = append(out, r)
			}
		}
		return out, true, nil
	default:
		return v, true, nil
	}
}

// evalString evaluates v and requires a string (or a scalar rendered as one).
func (e *evaluator) evalString(what string, v any, depth int) (string, error) {
	r, present, err := e.eval(v, depth)
	if err != nil {
		return "", err
	}
	s, ok := scalarString(r)
	if !present || !ok {
		return "", fmt.Errorf("cfn: %s is not a string", what)
	}
	return s, nil
}

// evalList evaluates v and requires a list.
func (e *evaluator) evalList(what string, v any, depth int) ([]any, error) {
	r, present, err := e.eval(v, depth)
	if err != nil {
		return nil, err
	}
	list, ok := r.([]any)
	if !present || !ok {
		return nil, fmt.Errorf("cfn: %s is not a list", what)
	}
	return list, nil
}

func (e *evaluator) call(fn string, arg any, depth int) (any, bool, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, false, errors.New("cfn: Ref takes a name")
		}
		return e.ref(name)
	case "Fn::GetAtt":
		res, attr, rest, err := getAttArgs(arg)
		if err != nil {
			return nil, false, fmt.Errorf("cfn: %w", err)
		}
		if rest != nil {
			if attr, err = e.evalString("Fn::GetAtt attribute", rest, depth); err != nil {
				return nil, false, err
			}
		}
		v, ok := e.values[res+"."+attr]
		if !ok {
			return nil, false, fmt.Errorf("cfn: no value for %s.%s", res, attr)
		}
		return v, true, nil
	case "Fn::Sub":
		s, err := e.sub(arg, depth)
		return s, err == nil, err
	case "Fn::Join":
		list, ok := arg.([]any)
		if !ok || len(list) != 2 {
			return nil, false, errors.New("cfn: Fn::Join takes a delimiter and a list")
		}
		delim, ok := list[0].(string)
		if !ok {
			return nil, false, errors.New("cfn: Fn::Join delimiter is not a string")
		}
		parts, err := e.evalList("Fn::Join list", list[1], depth)
		if err != nil {
			return nil, false, err
		}
		strs := make([]string, len(parts))
		for i, p := range parts {
			s, ok := scalarString(p)
			if !ok {
				return nil, false, errors.New("cfn: Fn::Join element is not a string")
			}
			strs[i] = s
		}
		return strings.Join(strs, delim), true, nil
	case "Fn::Split":
		list, ok := arg.([]any)
		if !ok || len(list) != 2 {
			return nil, false, errors.New("cfn: Fn::Split takes a delimiter and a string")
		}
		delim, ok := list[0].(string)
		if !ok || delim == "" {
			return nil, false, errors.New("cfn: Fn::Split delimiter is not a non-empty string")
		}
		s, err := e.evalString("Fn::Split source", list[1], depth)
		if err != nil {
			return nil, false, err
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, true, nil
	case "Fn::Select":
		list, ok := arg.([]any)
		if !ok || len(list) != 2 {
			return nil, false, errors.New("cfn: Fn::Select takes an index and a list")
		}
		idx, err := e.evalString("Fn::Select index", list[0], depth)
		if err != nil {
			return nil, false, err
		}
		i, ok := Int(idx)
		if !ok {
			return nil, false, fmt.Errorf("cfn: Fn::Select index %q is not an integer", idx)
		}
		from, err := e.evalList("Fn::Select list", list[1], depth)
		if err != nil {
			return nil, false, err
		}
		if i < 0 || i >= int64(len(from)) {
			return nil, false, fmt.Errorf("cfn: Fn::Select index %d out of range", i)
		}
		return from[i], true, nil
	case "Fn::If":
		list, ok := arg.([]any)
		if !ok || len(list) != 3 {
			return nil, false, errors.New("cfn: Fn::If takes a condition name and two values")
		}
		name, ok := list[0].(string)
		if !ok {
			return nil, false, errors.New("cfn: Fn::If takes a condition name first")
		}
		c, err := e.condition(name, depth)
		if err != nil {
			return nil, false, err
		}
		if c {
			return e.eval(list[1], depth)
		}
		return e.eval(list[2], depth)
	case "Fn::FindInMap":
		list, ok := arg.([]any)
		if !ok || len(list) != 3 {
			return nil, false, errors.New("cfn: Fn::FindInMap takes a map name and two keys")
		}
		path := make([]string, 3)
		for i, el := range list {
			s, err := e.evalString("Fn::FindInMap key", el, depth)
			if err != nil {
				return nil, false, err
			}
			path[i] = s
		}
		v, ok := Lookup(e.t.Mappings, path...)
		if !ok {
			return nil, false, fmt.Errorf("cfn: mapping %s has no %s.%s", path[0], path[1], path[2])
		}
		return v, true, nil
	case "Condition", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		b, err := e.boolean(map[string]any{fn: arg}, depth)
		return b, err == nil, err
	default:
		return nil, false, fmt.Errorf("cfn: cannot evaluate %s", fn)
	}
}

func (e *evaluator) ref(name string) (any, bool, error) {
	if name == "AWS::NoValue" {
		return nil, false, nil
	}
	p, isParam := e.t.Parameters[name]
	v, given := e.values[name]
	switch {
	case isParam && given:
		return parameterValue(p, v), true, nil
	case isParam && p.HasDefault:
		return parameterValue(p, p.Default), true, nil
	case isParam:
		return nil, false, fmt.Errorf("cfn: parameter %s has no value and no Default", name)
	case given:
		return normalize(v), true, nil
	default:
		return nil, false, fmt.Errorf("cfn: no value for %s", name)
	}
}

// parameterValue is what Ref gives for parameter p set to v: a list for a
// list type, a string otherwise.
func parameterValue(p Parameter, v any) any {
	list := p.Type == "CommaDelimitedList" || strings.HasPrefix(p.Type, "List<")
	if s, ok := v.(string); ok && list {
		var out []any
		for _, part := range strings.Split(s, ",") {
			out = append(out, part)
		}
		return out
	}
	if s, ok := scalarString(v); ok {
		return s
	}
	return normalize(v)
}

// normalize turns a []string given in values into the []any the tree uses.
func normalize(v any) any {
	if ss, ok := v.([]string); ok {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	return v
}

func (e *evaluator) sub(arg any, depth int) (string, error) {
	s, vars, err := subArgs(arg)
	if err != nil {
		return "", fmt.Errorf("cfn: %w", err)
	}
	locals := make(map[string]string, len(vars))
	for k, v := range vars {
		if locals[k], err = e.evalString("Fn::Sub variable "+k, v, depth); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		rest := s[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return "", fmt.Errorf("cfn: unterminated ${ in Fn::Sub string %q", s)
		}
		name := rest[:j]
		s = rest[j+1:]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			b.WriteString("${" + lit + "}")
			continue
		}
		if v, ok := locals[name]; ok {
			b.WriteString(v)
			continue
		}
		var v any
		if res, attr, ok := strings.Cut(name, "."); ok {
			if v, err = e.valueOf(res + "." + attr); err != nil {
				return "", err
			}
		} else {
			var present bool
			if v, present, err = e.ref(name); err != nil {
				return "", err
			}
			if !present {
				return "", fmt.Errorf("cfn: ${%s} has no value", name)
			}
		}
		str, ok := scalarString(v)
		if !ok {
			return "", fmt.Errorf("cfn: ${%s} is not a string", name)
		}
		b.WriteString(str)
	}
}

func (e *evaluator) valueOf(key string) (any, error) {
	v, ok := e.values[key]
	if !ok {
		return nil, fmt.Errorf("cfn: no value for %s", key)
	}
	return v, nil
}

func (e *evaluator) condition(name string, depth int) (bool, error) {
	if c, ok := e.conds[name]; ok {
		return c, nil
	}
	expr, ok := e.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("cfn: no condition %s", name)
	}
	if e.active[name] {
		return false, fmt.Errorf("cfn: condition %s refers to itself", name)
	}
	e.active[name] = true
	defer delete(e.active, name)
	c, err := e.boolean(expr, depth+1)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	e.conds[name] = c
	return c, nil
}

// boolean evaluates a condition expression: Fn::Equals, Fn::Not, Fn::And,
// Fn::Or or Condition.
func (e *evaluator) boolean(expr any, depth int) (bool, error) {
	if depth > maxDepth {
		return false, fmt.Errorf("cfn: nested deeper than %d levels", maxDepth)
	}
	fn, arg, ok := Intrinsic(expr)
	if !ok {
		return false, errors.New("cfn: not a condition expression")
	}
	if fn == "Condition" {
		return e.condition(arg.(string), depth)
	}
	list, ok := arg.([]any)
	if !ok {
		return false, fmt.Errorf("cfn: %s takes a list", fn)
	}
	switch fn {
	case "Fn::Equals":
		if len(list) != 2 {
			return false, errors.New("cfn: Fn::Equals takes two values")
		}
		a, err := e.evalString("Fn::Equals value", list[0], depth)
		if err != nil {
			return false, err
		}
		b, err := e.evalString("Fn::Equals value", list[1], depth)
		if err != nil {
			return false, err
		}
		return a == b, nil
	case "Fn::Not":
		if len(list) != 1 {
			return false, errors.New("cfn: Fn::Not takes one condition")
		}
		c, err := e.boolean(list[0], depth+1)
		return !c, err
	case "Fn::And", "Fn::Or":
		if len(list) < 2 || len(list) > 10 {
			return false, fmt.Errorf("cfn: %s takes 2 to 10 conditions", fn)
		}
		and := fn == "Fn::And"
		result := and
		for _, c := range list {
			b, err := e.boolean(c, depth+1)
			if err != nil {
				return false, err
			}
			if and {
				result = result && b
			} else {
				result = result || b
			}
		}
		return result, nil
	default:
		return false, fmt.Errorf("cfn: %s is not a condition function", fn)
	}
}
