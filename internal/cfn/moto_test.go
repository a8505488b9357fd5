package cfn_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// What moto 5.2.1's CloudFormation does differently from CloudFormation, and
// how the tests make up for it:
//
//   - It creates no resource of the types in motoCannotCreate (it logs "No
//     Moto CloudFormation support for ..." and goes on). For every resource
//     the deployed copy of a template has an output, probePrefix+logical id,
//     holding the resource's properties as moto evaluates them
//     (Fn::ToJsonString) under the resource's own Condition: the tests read
//     those resources' properties from their probes, and whether a resource
//     would be created at all from whether its probe exists. The same goes
//     for properties moto's models of other types drop (Lambda's
//     Architectures and LoggingConfig, a role's ManagedPolicyArns).
//   - It gives Ref and Fn::Equals the value of a Number parameter as a
//     number, where CloudFormation gives a string (so that !Equals [!Ref
//     ReservedConcurrency, "-1"] never holds, and Lambda's environment gets
//     numbers): the deployed copy declares those parameters String.
//     moto then keeps such strings in properties CloudFormation would
//     convert to integers (a function's reserved concurrency, a log group's
//     retention), and the SDK refuses to decode them, so those two are read
//     with rawJSON. So are dashboards: the SDK's CloudWatch client speaks a
//     protocol moto does not serve.
//   - It stores a role's inline PolicyDocument given as an object as Python
//     prints it, not as JSON: the deployed copy wraps each in
//     Fn::ToJsonString, which moto evaluates as AWS::LanguageExtensions
//     would, so that IAM keeps the JSON.
//   - It keeps an !If that yields AWS::NoValue as a null element of a list
//     (CloudFormation drops it): statements reads a policy's Statement list
//     without its nulls.
//   - It splits a CommaDelimitedList parameter's value only when the value
//     is given, not its Default: deploy gives the Default of every such
//     parameter it is not given.
//   - AWS::Partition is always "aws", whatever the region, so a stack in
//     another partition shows nothing; TestARNsArePartitionAware and
//     cfn-lint's I3042 check that no ARN names a partition.
//   - It checks no parameter constraint (AllowedPattern, MinValue, ...):
//     TestParameterPatterns and TestDeployParameterPatterns check those.
//   - It reports SqsManagedSseEnabled true for every queue, one with a KMS
//     key too, and answers GetKeyPolicy of a key a template made with the
//     policy as an object: TestDeadLetterQueueEncryption reads the queue's
//     property from the probe, keyPolicy reads the key's policy with
//     rawJSON.
//   - It ignores the Rules section, where CloudFormation refuses to create a
//     stack whose rule applies and an assertion of it fails. For each
//     assertion the deployed copy has a condition, made of the rule's own
//     RuleCondition and Assert, that holds exactly when CloudFormation would
//     refuse the stack for it, and an output rulePrefix+rule+index under that
//     condition: moto evaluates them as it evaluates the template's own
//     conditions (a Rules section may use functions Conditions do not know,
//     such as Fn::Contains; forMoto fails on those), and deploy fails a test
//     whose stack CloudFormation would refuse unless the spec says it may be
//     (stackSpec.refusable, stack.refusals).
var motoCannotCreate = map[string]bool{
	"AWS::CloudFormation::WaitConditionHandle": true, // a "null model": nothing to create
	"AWS::CloudWatch::Alarm":                   true,
	"AWS::Events::EventBusPolicy":              true,
	"AWS::Lambda::EventInvokeConfig":           true,
	"AWS::Organizations::Policy":               true,
	"AWS::SNS::Subscription":                   true,
	"AWS::SQS::QueuePolicy":                    true,
}

// probePrefix starts the name of the outputs forMoto adds for resources;
// rulePrefix the name of those it adds for the assertions of Rules.
const (
	probePrefix = "MotoProbe"
	rulePrefix  = "MotoRuleRefuses"
)

// forMoto returns the copy of the translated template deployed to moto (see
// above).
func forMoto(t testing.TB, tpl *cfnTemplate) []byte {
	t.Helper()
	data, err := json.Marshal(tpl.raw)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := decodeJSON(data, &doc); err != nil {
		t.Fatal(err)
	}
	params, _ := doc["Parameters"].(map[string]any)
	for _, v := range params {
		p, _ := v.(map[string]any)
		if p["Type"] == "Number" {
			p["Type"] = "String"
			if d, ok := p["Default"]; ok {
				p["Default"] = scalarString(d)
			}
		}
	}
	outputs, _ := doc["Outputs"].(map[string]any)
	if outputs == nil {
		outputs = map[string]any{}
		doc["Outputs"] = outputs
	}
	rulesAsConditions(t, doc, outputs)
	resources, _ := doc["Resources"].(map[string]any)
	for id, v := range resources {
		r, _ := v.(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
		}
		probe := map[string]any{"Value": map[string]any{"Fn::ToJsonString": deepCopy(t, props)}}
		if c, ok := r["Condition"]; ok {
			probe["Condition"] = c
		}
		outputs[probePrefix+id] = probe
		if r["Type"] == "AWS::IAM::Role" {
			policies, _ := props["Policies"].([]any)
			for _, p := range policies {
				if pm, ok := p.(map[string]any); ok {
					pm["PolicyDocument"] = map[string]any{"Fn::ToJsonString": pm["PolicyDocument"]}
				}
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rulesAsConditions replaces the Rules section of doc by the conditions and
// outputs that say which assertions CloudFormation would refuse the stack
// for (see above).
func rulesAsConditions(t testing.TB, doc, outputs map[string]any) {
	t.Helper()
	rules, _ := doc["Rules"].(map[string]any)
	if len(rules) == 0 {
		return
	}
	delete(doc, "Rules")
	conditions, _ := doc["Conditions"].(map[string]any)
	if conditions == nil {
		conditions = map[string]any{}
		doc["Conditions"] = conditions
	}
	var check func(v any)
	check = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, el := range x {
				if k != "Ref" && k != "Fn::Equals" && k != "Fn::Not" && k != "Fn::And" && k != "Fn::Or" {
					t.Fatalf("a Rules section uses %s, which conditions cannot evaluate: check it another way", k)
				}
				check(el)
			}
		case []any:
			for _, el := range x {
				check(el)
			}
		}
	}
	for name, v := range rules {
		r, _ := v.(map[string]any)
		applies, ok := r["RuleCondition"]
		if !ok {
			applies = map[string]any{"Fn::Equals": []any{"always", "always"}}
		}
		check(applies)
		assertions, _ := r["Assertions"].([]any)
		if len(assertions) == 0 {
			t.Fatalf("rule %s has no Assertions", name)
		}
		for i, a := range assertions {
			am, _ := a.(map[string]any)
			check(am["Assert"])
			id := fmt.Sprintf("%s%s%d", rulePrefix, name, i)
			conditions[id] = map[string]any{"Fn::And": []any{deepCopy(t, applies), map[string]any{"Fn::Not": []any{deepCopy(t, am["Assert"])}}}}
			desc, _ := am["AssertDescription"].(string)
			if desc == "" {
				desc = "assertion " + fmt.Sprint(i) + " of rule " + name
			}
			outputs[id] = map[string]any{"Condition": id, "Value": desc}
		}
	}
}

func deepCopy(t testing.TB, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := decodeJSON(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// stackSpec is one deployment of a template.
type stackSpec struct {
	template string            // path of the template
	name     string            // stack name; made up when empty
	account  string            // centralAccount when empty
	region   string            // homeRegion when empty
	params   map[string]string // parameter values; the others keep their defaults
	// refusable says the test expects CloudFormation may refuse the stack
	// for a rule of the template (stack.refusals); without it, deploy fails
	// the test of a stack that would be refused.
	refusable bool
}

func (s stackSpec) withDefaults() stackSpec {
	if s.account == "" {
		s.account = centralAccount
	}
	if s.region == "" {
		s.region = homeRegion
	}
	return s
}

func (s stackSpec) key() string {
	keys := slices.Sorted(maps.Keys(s.params))
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|%v", s.template, s.name, s.account, s.region, s.refusable)
	for _, k := range keys {
		fmt.Fprintf(&b, "|%s=%s", k, s.params[k])
	}
	return b.String()
}

// stackNames are the prefixes of made-up stack names, by template.
var stackNames = map[string]string{
	templatePath:  "kms-autotagger",
	forwarderPath: "kms-autotagger-forwarder",
	memberPath:    "kms-autotagger-member",
	busPolicyPath: "kms-autotagger-organization",
	scpPath:       "kms-autotagger-governance",
	keyPolicyPath: "kms-autotagger-governed-key",
}

// stack is a stack moto created.
type stack struct {
	spec stackSpec
	name string
	id   string
	// template is the translated template, before the changes of forMoto.
	template *cfnTemplate
	// outputs are the stack's outputs, without the probes.
	outputs map[string]string
	// probes holds, by logical id, the properties of every resource
	// CloudFormation would create in the stack, as moto evaluated them.
	probes map[string]map[string]any
	// refusals are the AssertDescriptions of the assertions of the
	// template's Rules that fail for the stack's parameters: CloudFormation
	// would refuse to create it.
	refusals []string
	// physical holds the physical ids of the resources moto created.
	physical map[string]string
	// codeSHA is the SHA-256 of the function code put in S3.
	codeSHA string
	cfg     aws.Config
}

// deploy returns the stack of spec, deploying it on first use: the
// template's translation for spec's parameters (and code uploaded as `sam
// package` would have), created by moto's CloudFormation with those
// parameters. Equal specs share a stack.
func deploy(t testing.TB, spec stackSpec) *stack {
	t.Helper()
	spec = spec.withDefaults()
	key := spec.key()
	shared.mu.Lock()
	if s, ok := shared.stacks[key]; ok {
		shared.mu.Unlock()
		return s
	}
	shared.created++
	name := spec.name
	if name == "" {
		name = fmt.Sprintf("%s-%d", stackNames[spec.template], shared.created)
	}
	shared.mu.Unlock()

	s := createStack(t, spec, name)
	if len(s.refusals) > 0 && !spec.refusable {
		t.Fatalf("CloudFormation would refuse stack %s of %s with %v: %q", name, filepath.Base(spec.template), spec.params, s.refusals)
	}
	shared.mu.Lock()
	if shared.stacks == nil {
		shared.stacks = map[string]*stack{}
	}
	shared.stacks[key] = s
	shared.mu.Unlock()
	return s
}

func createStack(t testing.TB, spec stackSpec, name string) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{spec: spec, name: name, cfg: awsConfig(t, spec.account, spec.region)}
	s.codeSHA = uploadCode(t, spec.account)
	s.template = parseTemplate(t, translateJSON(t, translation{
		Template: spec.template, Parameters: spec.params, Region: spec.region, CodeURI: codeURI(spec.account),
	}))
	params := maps.Clone(spec.params)
	if params == nil {
		params = map[string]string{}
	}
	for pname, p := range s.template.Parameters {
		if _, given := params[pname]; !given && p.Type == "CommaDelimitedList" && p.HasDefault() {
			params[pname] = p.DefaultString()
		}
	}
	var cfnParams []cfntypes.Parameter
	for _, k := range slices.Sorted(maps.Keys(params)) {
		cfnParams = append(cfnParams, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(params[k])})
	}
	client := cloudformation.NewFromConfig(s.cfg)
	created, err := client.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    aws.String(name),
		TemplateBody: aws.String(string(forMoto(t, s.template))),
		Parameters:   cfnParams,
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityNamedIam},
	})
	if err != nil {
		t.Fatalf("CreateStack %s of %s with %v: %v", name, filepath.Base(spec.template), spec.params, err)
	}
	s.id = aws.ToString(created.StackId)

	var st cfntypes.Stack
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		out, err := client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: created.StackId})
		if err != nil || len(out.Stacks) != 1 {
			t.Fatalf("DescribeStacks %s: %v", name, err)
		}
		st = out.Stacks[0]
		if !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS") || time.Now().After(deadline) {
			break
		}
	}
	if st.StackStatus != cfntypes.StackStatusCreateComplete {
		t.Fatalf("stack %s of %s with %v: %s %s", name, filepath.Base(spec.template), spec.params, st.StackStatus, aws.ToString(st.StackStatusReason))
	}
	s.outputs, s.probes = map[string]string{}, map[string]map[string]any{}
	for _, o := range st.Outputs {
		key, value := aws.ToString(o.OutputKey), aws.ToString(o.OutputValue)
		if strings.HasPrefix(key, rulePrefix) {
			s.refusals = append(s.refusals, value)
			continue
		}
		id, isProbe := strings.CutPrefix(key, probePrefix)
		if !isProbe {
			s.outputs[key] = value
			continue
		}
		var props map[string]any
		if err := decodeJSON([]byte(value), &props); err != nil {
			t.Fatalf("stack %s: probe of %s = %.200q: %v", name, id, value, err)
		}
		s.probes[id] = props
	}
	s.physical = map[string]string{}
	pages := cloudformation.NewListStackResourcesPaginator(client, &cloudformation.ListStackResourcesInput{StackName: created.StackId})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListStackResources %s: %v", name, err)
		}
		for _, r := range page.StackResourceSummaries {
			if id := aws.ToString(r.LogicalResourceId); id != "" {
				s.physical[id] = aws.ToString(r.PhysicalResourceId)
			}
		}
	}
	return s
}

// created reports whether CloudFormation would create resource id in the
// stack: whether its Condition holds, as moto evaluated it.
func (s *stack) created(id string) bool {
	_, ok := s.probes[id]
	return ok
}

// probe returns the properties of resource id as moto evaluated them.
func (s *stack) probe(t testing.TB, id string) map[string]any {
	t.Helper()
	p, ok := s.probes[id]
	if !ok {
		t.Fatalf("stack %s: resource %s is not created", s.name, id)
	}
	return p
}

// physicalID returns the physical id of resource id, which moto must have
// created.
func (s *stack) physicalID(t testing.TB, id string) string {
	t.Helper()
	p, ok := s.physical[id]
	if !ok || p == "" {
		t.Fatalf("stack %s: moto created no resource %s (it has %q)", s.name, id, slices.Sorted(maps.Keys(s.physical)))
	}
	return p
}

// output returns the stack's output name, which must exist.
func (s *stack) output(t testing.TB, name string) string {
	t.Helper()
	v, ok := s.outputs[name]
	if !ok {
		t.Fatalf("stack %s has no output %s (it has %q)", s.name, name, slices.Sorted(maps.Keys(s.outputs)))
	}
	return v
}

// statement is one statement of a policy document.
type statement map[string]any

// statements decodes an IAM, SQS, Lambda or EventBridge policy document
// (URL-encoded as IAM returns it, or not) and returns its statements,
// without moto's null elements (see above).
func statements(t testing.TB, doc string) []statement {
	t.Helper()
	if !json.Valid([]byte(doc)) {
		unescaped, err := url.PathUnescape(doc)
		if err != nil {
			t.Fatalf("policy document %.200q: %v", doc, err)
		}
		doc = unescaped
	}
	var policy struct {
		Statement any
	}
	if err := decodeJSON([]byte(doc), &policy); err != nil {
		t.Fatalf("policy document %.200q: %v", doc, err)
	}
	var list []any
	switch v := policy.Statement.(type) {
	case []any:
		list = v
	case map[string]any:
		list = []any{v}
	default:
		t.Fatalf("policy document %.200q: Statement is %T", doc, policy.Statement)
	}
	var out []statement
	for _, el := range list {
		if el == nil {
			continue
		}
		m, ok := el.(map[string]any)
		if !ok {
			t.Fatalf("policy document %.200q: statement %#v", doc, el)
		}
		out = append(out, m)
	}
	return out
}

// trust returns the statements of the trust policy of role id.
func (s *stack) trust(t testing.TB, id string) []statement {
	t.Helper()
	out, err := iam.NewFromConfig(s.cfg).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(s.physicalID(t, id))})
	if err != nil {
		t.Fatalf("GetRole %s: %v", id, err)
	}
	return statements(t, aws.ToString(out.Role.AssumeRolePolicyDocument))
}

// roleARN returns the ARN of role id as IAM has it.
func (s *stack) roleARN(t testing.TB, id string) string {
	t.Helper()
	out, err := iam.NewFromConfig(s.cfg).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(s.physicalID(t, id))})
	if err != nil {
		t.Fatalf("GetRole %s: %v", id, err)
	}
	return aws.ToString(out.Role.Arn)
}

// inlinePolicies returns the statements of each inline policy of role id,
// by policy name.
func (s *stack) inlinePolicies(t testing.TB, id string) map[string][]statement {
	t.Helper()
	ctx, client, name := context.Background(), iam.NewFromConfig(s.cfg), s.physicalID(t, id)
	list, err := client.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		t.Fatalf("ListRolePolicies %s: %v", id, err)
	}
	out := map[string][]statement{}
	for _, p := range list.PolicyNames {
		got, err := client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)})
		if err != nil {
			t.Fatalf("GetRolePolicy %s %s: %v", id, p, err)
		}
		out[p] = statements(t, aws.ToString(got.PolicyDocument))
	}
	return out
}

// allInline returns the statements of every inline policy of role id.
func (s *stack) allInline(t testing.TB, id string) []statement {
	t.Helper()
	var out []statement
	policies := s.inlinePolicies(t, id)
	for _, name := range slices.Sorted(maps.Keys(policies)) {
		out = append(out, policies[name]...)
	}
	return out
}

// function returns the configuration of the stack's function.
func (s *stack) function(t testing.TB) *lambda.GetFunctionConfigurationOutput {
	t.Helper()
	out, err := lambda.NewFromConfig(s.cfg).GetFunctionConfiguration(context.Background(),
		&lambda.GetFunctionConfigurationInput{FunctionName: aws.String(s.physicalID(t, functionID))})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration: %v", err)
	}
	return out
}

// environment returns the environment of the stack's function.
func (s *stack) environment(t testing.TB) map[string]string {
	t.Helper()
	fn := s.function(t)
	if fn.Environment == nil {
		t.Fatal("the function has no environment")
	}
	return fn.Environment.Variables
}

// functionPolicy returns the statements of the function's resource policy.
func (s *stack) functionPolicy(t testing.TB) []statement {
	t.Helper()
	out, err := lambda.NewFromConfig(s.cfg).GetPolicy(context.Background(), &lambda.GetPolicyInput{FunctionName: aws.String(s.physicalID(t, functionID))})
	if err != nil {
		t.Fatalf("GetPolicy: %v", err)
	}
	return statements(t, aws.ToString(out.Policy))
}

// rule is an EventBridge rule as EventBridge describes it.
type rule struct {
	arn, state string
	pattern    string // the EventPattern, as stored
	targets    []ebtypes.Target
}

func (s *stack) rule(t testing.TB, id string) rule {
	t.Helper()
	ctx, client, name := context.Background(), eventbridge.NewFromConfig(s.cfg), s.physicalID(t, id)
	d, err := client.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeRule %s: %v", id, err)
	}
	targets, err := client.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(name)})
	if err != nil {
		t.Fatalf("ListTargetsByRule %s: %v", id, err)
	}
	return rule{arn: aws.ToString(d.Arn), state: string(d.State), pattern: aws.ToString(d.EventPattern), targets: targets.Targets}
}

// queue returns every attribute of queue id.
func (s *stack) queue(t testing.TB, id string) map[string]string {
	t.Helper()
	out, err := sqs.NewFromConfig(s.cfg).GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.physicalID(t, id)), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes %s: %v", id, err)
	}
	return out.Attributes
}

// dashboard returns the body of dashboard id, as CloudWatch's
// GetDashboard answers it. It asks with rawJSON in CloudWatch's JSON
// protocol: the SDK's CloudWatch client speaks the RPCv2 CBOR protocol,
// which moto does not serve.
func (s *stack) dashboard(t testing.TB, id string) string {
	t.Helper()
	body := mustJSON(t, map[string]string{"DashboardName": s.physicalID(t, id)})
	out := s.rawJSON(t, "monitoring", http.MethodPost, "/", "GraniteServiceVersion20100801.GetDashboard", jsonProtocol10, body)
	b, ok := out["DashboardBody"].(string)
	if !ok {
		t.Fatalf("GetDashboard %s: %v", id, out)
	}
	return b
}

// reservedConcurrency returns the function's reserved concurrency, as
// Lambda's GetFunctionConcurrency answers it, and whether it has one. It
// reads the answer with rawJSON: moto answers the string the template gave.
func (s *stack) reservedConcurrency(t testing.TB) (string, bool) {
	t.Helper()
	out := s.rawJSON(t, "lambda", http.MethodGet, "/2019-09-30/functions/"+url.PathEscape(s.physicalID(t, functionID))+"/concurrency", "", "", nil)
	v, ok := out["ReservedConcurrentExecutions"]
	if !ok || v == nil {
		return "", false
	}
	return scalarString(v), true
}

// logGroup returns log group id as CloudWatch Logs' DescribeLogGroups
// answers it, read with rawJSON: moto answers the retention the template
// gave, a string.
func (s *stack) logGroup(t testing.TB, id string) map[string]any {
	t.Helper()
	name := s.physicalID(t, id)
	body := mustJSON(t, map[string]string{"logGroupNamePrefix": name})
	out := s.rawJSON(t, "logs", http.MethodPost, "/", "Logs_20140328.DescribeLogGroups", jsonProtocol11, body)
	groups, _ := out["logGroups"].([]any)
	for _, g := range groups {
		if m, ok := g.(map[string]any); ok && m["logGroupName"] == name {
			return m
		}
	}
	t.Fatalf("DescribeLogGroups has no %s: %v", name, out)
	return nil
}

// The content types of AWS's JSON protocols.
const (
	jsonProtocol10 = "application/x-amz-json-1.0"
	jsonProtocol11 = "application/x-amz-json-1.1"
)

// rawJSON makes one signed request of the stack's account and region to
// moto and returns its JSON answer decoded generically, for the answers the
// SDK cannot decode (see above). target and contentType are the
// X-Amz-Target and the protocol of a JSON protocol request, empty for a
// REST one.
func (s *stack) rawJSON(t testing.TB, service, method, path, target, contentType string, body []byte) map[string]any {
	t.Helper()
	ctx := context.Background()
	m := motoServer(t)
	req, err := http.NewRequestWithContext(ctx, method, m.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", contentType)
	}
	creds, err := m.Credentials().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, s.spec.region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", service, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s %s %s: %s %s %v", service, method, path, target, resp.Status, data, err)
	}
	var out map[string]any
	if err := decodeJSON(data, &out); err != nil {
		t.Fatalf("%s %s %s: %v in %s", service, method, path, err, data)
	}
	return out
}
