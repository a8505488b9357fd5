package tagger_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	keyARN     = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	primaryARN = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
)

var eventTime = time.Date(2024, 1, 9, 18, 52, 34, 0, time.UTC)

func keyEvent(c events.Creator, mod ...func(*events.KeyEvent)) *events.KeyEvent {
	ev := &events.KeyEvent{
		EventID: "c2ac6a29-1c43-4f0e-8d55-0e6a2f1e7b11", EventName: events.EventNameCreateKey,
		EventTime: eventTime, EventRegion: "us-east-1", KeyARN: keyARN, Region: "us-east-1",
		Account: "111122223333", Partition: "aws", KeyManager: events.KeyManagerCustomer, Creator: c,
	}
	for _, m := range mod {
		m(ev)
	}
	return ev
}

func mustPolicy(t *testing.T, names tagger.Names, prefix string, static []tagger.Tag) *tagger.Policy {
	t.Helper()
	p, err := tagger.NewPolicy(names, prefix, static)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func TestPlanIdentityTypes(t *testing.T) {
	const (
		user    = "arn:aws:iam::111122223333:user/alice"
		session = "arn:aws:sts::111122223333:assumed-role/Deployer/alice"
		role    = "arn:aws:iam::111122223333:role/Deployer"
		ssoRole = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef"
		ssoSess = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com"
		fedUser = "arn:aws:sts::111122223333:federated-user/bob"
		root    = "arn:aws:iam::111122223333:root"
		storeU  = "arn:aws:identitystore::111122223333:identitystore/d-1234567890/user/9a6b1c2d-0000-1111-2222-333344445555"
	)
	at := "2024-01-09T18:52:34Z"
	id := "c2ac6a29-1c43-4f0e-8d55-0e6a2f1e7b11"
	by := func(v string) tagger.Tag { return tagger.Tag{Key: "CreatedByUser", Value: v} }
	tests := []struct {
		name    string
		creator events.Creator
		mod     func(*events.KeyEvent)
		want    []tagger.Tag
	}{
		{"IAMUser", events.Creator{Type: "IAMUser", PrincipalARN: user},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: user}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, by("alice")}},
		{"AssumedRole", events.Creator{Type: "AssumedRole", PrincipalARN: session, IssuerARN: role},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: session}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, {Key: "CreatedByRole", Value: role}}},
		{"IdentityCenterRole", events.Creator{Type: "AssumedRole", PrincipalARN: ssoSess, IssuerARN: ssoRole},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: ssoSess}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, {Key: "CreatedByRole", Value: ssoRole}, by("alice@example.com")}},
		{"IdentityCenterUser", events.Creator{Type: "IdentityCenterUser", IdentityStoreUser: storeU},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: storeU}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, by(storeU)}},
		{"FederatedUser", events.Creator{Type: "FederatedUser", PrincipalARN: fedUser, IssuerARN: user},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: fedUser}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, {Key: "CreatedByRole", Value: user}}},
		{"Root", events.Creator{Type: "Root", PrincipalARN: root},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: root}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, by("root")}},
		{"AWSService", events.Creator{Type: "AWSService", InvokedBy: "secretsmanager.amazonaws.com"},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: "secretsmanager.amazonaws.com"}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, {Key: "CreatedVia", Value: "secretsmanager.amazonaws.com"}}},
		{"CloudFormation", events.Creator{Type: "AssumedRole", PrincipalARN: session, IssuerARN: role, InvokedBy: "cloudformation.amazonaws.com"},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: session}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, {Key: "CreatedByRole", Value: role}, {Key: "CreatedVia", Value: "cloudformation.amazonaws.com"}}},
		{"Replica", events.Creator{Type: "IAMUser", PrincipalARN: user},
			func(ev *events.KeyEvent) { ev.EventName = events.EventNameReplicateKey; ev.PrimaryKeyARN = primaryARN },
			[]tagger.Tag{{Key: "CreatedBy", Value: user}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, {Key: "ReplicaOf", Value: primaryARN}, by("alice")}},
		{"IAMUserIssuerIgnored", events.Creator{Type: "IAMUser", PrincipalARN: user, IssuerARN: role},
			nil, []tagger.Tag{{Key: "CreatedBy", Value: user}, {Key: "CreatedAt", Value: at}, {Key: "CreationEventId", Value: id}, by("alice")}},
	}
	p := mustPolicy(t, tagger.DefaultNames(), "", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*events.KeyEvent)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			ev := keyEvent(tt.creator, mods...)
			got := p.Plan(ev, ev.RequestTags)
			want := append(slices.Clone(tt.want), tagger.Tag{Key: "CreatedByEvidence", Value: "event"})
			if !reflect.DeepEqual(got.Tags, want) {
				t.Errorf("tags: got %v, want %v", got.Tags, want)
			}
			if len(got.Dropped) != 0 || len(got.Overridden) != 0 {
				t.Errorf("got dropped %v overridden %v, want none", got.Dropped, got.Overridden)
			}
		})
	}
}

func TestPlanNamesPrefixAndStatic(t *testing.T) {
	names := tagger.Names{CreatedBy: "Owner", CreatedAt: "Born"} // the others off
	p := mustPolicy(t, names, "gov:", []tagger.Tag{{Key: "ManagedBy", Value: "platform"}, {Key: "Empty", Value: ""}})
	got := p.Plan(keyEvent(events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/R/s", IssuerARN: "arn:aws:iam::111122223333:role/R", InvokedBy: "cloudformation.amazonaws.com"}), nil)
	want := []tagger.Tag{{Key: "gov:Owner", Value: "arn:aws:sts::111122223333:assumed-role/R/s"}, {Key: "gov:Born", Value: "2024-01-09T18:52:34Z"}, {Key: "ManagedBy", Value: "platform"}, {Key: "Empty", Value: ""}}
	if !reflect.DeepEqual(got.Tags, want) {
		t.Errorf("got %v, want %v", got.Tags, want)
	}
	if got, want := p.Keys(), []string{"gov:Owner", "gov:Born", "ManagedBy", "Empty"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys: got %v, want %v", got, want)
	}
}

func TestPlanSpoofedGovernanceTagsAreOverwritten(t *testing.T) {
	p := mustPolicy(t, tagger.DefaultNames(), "", []tagger.Tag{{Key: "ManagedBy", Value: "platform"}})
	ev := keyEvent(events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:user/mallory"}, func(ev *events.KeyEvent) {
		ev.RequestTags = []tagger.Tag{
			{Key: "Project", Value: "apollo"},
			{Key: "CreatedBy", Value: "arn:aws:iam::111122223333:user/someone-else"},
			{Key: "CreatedByRole", Value: "arn:aws:iam::111122223333:role/Admin"}, // no true value: removed
			{Key: "ManagedBy", Value: "nobody"},
			{Key: "createdby", Value: "arn:aws:iam::111122223333:user/someone-else"}, // a case variant: removed
		}
	})
	got := p.Plan(ev, ev.RequestTags)
	want := []tagger.Tag{
		{Key: "CreatedBy", Value: "arn:aws:iam::111122223333:user/mallory"},
		{Key: "CreatedAt", Value: "2024-01-09T18:52:34Z"},
		{Key: "CreationEventId", Value: "c2ac6a29-1c43-4f0e-8d55-0e6a2f1e7b11"},
		{Key: "CreatedByUser", Value: "mallory"},
		{Key: "CreatedByEvidence", Value: "event"},
		{Key: "ManagedBy", Value: "platform"},
	}
	if !reflect.DeepEqual(got.Tags, want) {
		t.Errorf("tags: got %v, want %v", got.Tags, want)
	}
	if !reflect.DeepEqual(got.Write, want) {
		t.Errorf("write: got %v, want %v", got.Write, want)
	}
	if wantRemove := []string{"CreatedByRole", "createdby"}; !reflect.DeepEqual(got.Remove, wantRemove) {
		t.Errorf("remove: got %v, want %v", got.Remove, wantRemove)
	}
	wantOver := []tagger.Tag{
		{Key: "CreatedBy", Value: "arn:aws:iam::111122223333:user/someone-else"},
		{Key: "CreatedByRole", Value: "arn:aws:iam::111122223333:role/Admin"},
		{Key: "ManagedBy", Value: "nobody"},
		{Key: "createdby", Value: "arn:aws:iam::111122223333:user/someone-else"},
	}
	if !reflect.DeepEqual(got.Overridden, wantOver) {
		t.Errorf("overridden: got %v, want %v", got.Overridden, wantOver)
	}
	for _, tag := range got.Write {
		if tag.Key == "Project" {
			t.Errorf("plan writes %v, a tag the policy does not own", tag)
		}
	}
	if slices.Contains(got.Remove, "Project") {
		t.Error("plan removes Project, a tag the policy does not own")
	}
}

// TestPlanExactSet gives the plan the tags a key carries and checks that
// what it writes and removes leaves exactly the owned tags with a true
// value, each with its true value, and touches nothing else.
func TestPlanExactSet(t *testing.T) {
	user := events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:user/alice"}
	truth := []tagger.Tag{
		{Key: "gov:CreatedBy", Value: "arn:aws:iam::111122223333:user/alice"},
		{Key: "gov:CreatedAt", Value: "2024-01-09T18:52:34Z"},
		{Key: "gov:CreationEventId", Value: "c2ac6a29-1c43-4f0e-8d55-0e6a2f1e7b11"},
		{Key: "gov:CreatedByUser", Value: "alice"},
		{Key: "gov:CreatedByEvidence", Value: "event"},
		{Key: "Team", Value: "platform"},
	}
	tests := []struct {
		name       string
		current    []tagger.Tag
		wantWrite  []string
		wantRemove []string
	}{
		{"new key", nil, []string{"gov:CreatedBy", "gov:CreatedAt", "gov:CreationEventId", "gov:CreatedByUser", "gov:CreatedByEvidence", "Team"}, nil},
		{"already exact (a redelivery)", truth, nil, nil},
		{"one wrong value", append(slices.Clone(truth[:5]), tagger.Tag{Key: "Team", Value: "intruders"}), []string{"Team"}, nil},
		{"owned key with no true value added later", append(slices.Clone(truth), tagger.Tag{Key: "gov:CreatedByRole", Value: "arn:aws:iam::111122223333:role/Admin"}), nil, []string{"gov:CreatedByRole"}},
		{"a replica's tag on a key that is not one", append(slices.Clone(truth), tagger.Tag{Key: "gov:ReplicaOf", Value: "arn:aws:kms:us-east-1:111122223333:key/x"}), nil, []string{"gov:ReplicaOf"}},
		{"case variant with the prefix", append(slices.Clone(truth), tagger.Tag{Key: "GOV:createdby", Value: "arn:aws:iam::111122223333:user/mallory"}), nil, []string{"GOV:createdby"}},
		{"case variants of every kind", append(slices.Clone(truth), tagger.Tag{Key: "gov:CREATEDBYROLE", Value: "x"}, tagger.Tag{Key: "team", Value: "y"}, tagger.Tag{Key: "Gov:CreationEventID", Value: "z"}), nil, []string{"gov:CREATEDBYROLE", "team", "Gov:CreationEventID"}},
		{"other tags untouched", append(slices.Clone(truth), tagger.Tag{Key: "Project", Value: "apollo"}, tagger.Tag{Key: "CreatedBy", Value: "not ours: no prefix"}), nil, nil},
		{"variant only", []tagger.Tag{{Key: "gov:createdBy", Value: "arn:aws:iam::111122223333:user/alice"}}, []string{"gov:CreatedBy", "gov:CreatedAt", "gov:CreationEventId", "gov:CreatedByUser", "gov:CreatedByEvidence", "Team"}, []string{"gov:createdBy"}},
	}
	p := mustPolicy(t, tagger.DefaultNames(), "gov:", []tagger.Tag{{Key: "Team", Value: "platform"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Plan(keyEvent(user), tt.current)
			if keys := tagKeys(got.Write); !reflect.DeepEqual(keys, tt.wantWrite) {
				t.Errorf("write: got %v, want %v", keys, tt.wantWrite)
			}
			if !reflect.DeepEqual(got.Remove, tt.wantRemove) {
				t.Errorf("remove: got %v, want %v", got.Remove, tt.wantRemove)
			}
			if got.NoOp() != (tt.wantWrite == nil && tt.wantRemove == nil) {
				t.Errorf("NoOp: got %v", got.NoOp())
			}
			// Apply the plan to the key's tags: exactly the truth remains
			// of the owned keys, and the other tags are as they were.
			after := map[string]string{}
			for _, c := range tt.current {
				after[c.Key] = c.Value
			}
			for _, k := range got.Remove {
				delete(after, k)
			}
			for _, w := range got.Write {
				after[w.Key] = w.Value
			}
			owned := map[string]string{}
			for k, v := range after {
				if p.Owns(k) {
					owned[k] = v
				} else if want, ok := valueOf(tt.current, k); !ok || want != v {
					t.Errorf("tag %s=%s not owned, but changed", k, v)
				}
			}
			want := map[string]string{}
			for _, tr := range truth {
				want[tr.Key] = tr.Value
			}
			if !reflect.DeepEqual(owned, want) {
				t.Errorf("owned tags afterwards: got %v, want %v", owned, want)
			}
		})
	}
}

func valueOf(tags []tagger.Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

func TestOwnsIgnoresCase(t *testing.T) {
	p := mustPolicy(t, tagger.DefaultNames(), "gov:", []tagger.Tag{{Key: "Team", Value: "platform"}})
	for _, tt := range []struct {
		key         string
		owns, exact bool
	}{
		{"gov:CreatedBy", true, true},
		{"gov:createdby", true, false},
		{"GOV:CREATEDBY", true, false},
		{"TEAM", true, false},
		{"Team", true, true},
		{"CreatedBy", false, false}, // no prefix: not a governance key of this deployment
		{"gov:CreatedByX", false, false},
	} {
		if got := p.Owns(tt.key); got != tt.owns {
			t.Errorf("Owns(%q): got %v, want %v", tt.key, got, tt.owns)
		}
		if got := p.Exact(tt.key); got != tt.exact {
			t.Errorf("Exact(%q): got %v, want %v", tt.key, got, tt.exact)
		}
	}
}

func TestPlanTagBudget(t *testing.T) {
	names := tagger.DefaultNames()
	names.Evidence = "" // five tags to fit, in the order the cases count
	p := mustPolicy(t, names, "", []tagger.Tag{{Key: "ManagedBy", Value: "platform"}})
	creator := events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/R/s", IssuerARN: "arn:aws:iam::111122223333:role/R"}
	requestTags := func(n int, extra ...tagger.Tag) func(*events.KeyEvent) {
		return func(ev *events.KeyEvent) {
			for i := range n {
				ev.RequestTags = append(ev.RequestTags, tagger.Tag{Key: fmt.Sprintf("k%02d", i), Value: "v"})
			}
			ev.RequestTags = append(ev.RequestTags, extra...)
		}
	}
	tests := []struct {
		name        string
		mod         func(*events.KeyEvent)
		wantKeys    []string
		wantDropped []string
	}{
		{"room for all", requestTags(45), []string{"CreatedBy", "CreatedAt", "CreationEventId", "CreatedByRole", "ManagedBy"}, nil},
		{"two short", requestTags(47), []string{"CreatedBy", "CreatedAt", "CreationEventId"}, []string{"CreatedByRole", "ManagedBy"}},
		{"full", requestTags(50), nil, []string{"CreatedBy", "CreatedAt", "CreationEventId", "CreatedByRole", "ManagedBy"}},
		{"duplicates count once", requestTags(45, tagger.Tag{Key: "k00", Value: "again"}), []string{"CreatedBy", "CreatedAt", "CreationEventId", "CreatedByRole", "ManagedBy"}, nil},
		{"aws: tags do not count", requestTags(45, tagger.Tag{Key: "aws:cloudformation:stack-name", Value: "s"}, tagger.Tag{Key: "AWS:x", Value: "y"}), []string{"CreatedBy", "CreatedAt", "CreationEventId", "CreatedByRole", "ManagedBy"}, nil},
		{"overwrite costs nothing", requestTags(49, tagger.Tag{Key: "ManagedBy", Value: "x"}), []string{"CreatedBy", "ManagedBy"}, []string{"CreatedAt", "CreationEventId", "CreatedByRole"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := keyEvent(creator, tt.mod)
			got := p.Plan(ev, ev.RequestTags)
			if keys := tagKeys(got.Tags); !reflect.DeepEqual(keys, tt.wantKeys) {
				t.Errorf("tags: got %v, want %v", keys, tt.wantKeys)
			}
			if keys := tagKeys(got.Dropped); !reflect.DeepEqual(keys, tt.wantDropped) {
				t.Errorf("dropped: got %v, want %v", keys, tt.wantDropped)
			}
		})
	}
}

func tagKeys(tags []tagger.Tag) []string {
	var keys []string
	for _, t := range tags {
		keys = append(keys, t.Key)
	}
	return keys
}

func TestPlanSanitizesValues(t *testing.T) {
	p := mustPolicy(t, tagger.DefaultNames(), "", nil)
	long := "arn:aws:sts::111122223333:assumed-role/R/" + strings.Repeat("x", 300)
	got := p.Plan(keyEvent(events.Creator{Type: "IAMUser", PrincipalARN: long}, func(ev *events.KeyEvent) {
		ev.EventID = "id,with<bad>chars"
	}), nil)
	if v := got.Tags[0].Value; utf8.RuneCountInString(v) != tagger.MaxTagValueLen || !strings.HasPrefix(v, "arn:aws:sts::111122223333:assumed-role/R/xxx") {
		t.Errorf("CreatedBy: got %q (%d chars), want a 256-character truncation", v, utf8.RuneCountInString(v))
	}
	if v, want := got.Tags[2].Value, "id=2Cwith=3Cbad=3Echars"; v != want {
		t.Errorf("CreationEventId: got %q, want %q", v, want)
	}
}

func TestNewPolicyRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name   string
		names  tagger.Names
		prefix string
		static []tagger.Tag
		want   string
	}{
		{"aws prefix", tagger.DefaultNames(), "aws:", nil, "reserved prefix"},
		{"AWS prefix any case", tagger.Names{CreatedBy: "AWS:CreatedBy"}, "", nil, "reserved prefix"},
		{"bad character", tagger.Names{CreatedBy: "Created By!"}, "", nil, "does not accept"},
		{"too long", tagger.Names{CreatedBy: strings.Repeat("k", 129)}, "", nil, "more than 128"},
		{"duplicate", tagger.Names{CreatedBy: "Owner", CreatedAt: "Owner"}, "", nil, "configured twice"},
		{"duplicate ignoring case", tagger.Names{CreatedBy: "Owner", CreatedAt: "OWNER"}, "", nil, "differ only in case"},
		{"static duplicates derived ignoring case", tagger.DefaultNames(), "", []tagger.Tag{{Key: "createdby", Value: "x"}}, "differ only in case"},
		{"static duplicates derived", tagger.DefaultNames(), "", []tagger.Tag{{Key: "CreatedBy", Value: "x"}}, "configured twice"},
		{"static bad value", tagger.Names{}, "", []tagger.Tag{{Key: "K", Value: "a,b"}}, "does not accept"},
		{"static value too long", tagger.Names{}, "", []tagger.Tag{{Key: "K", Value: strings.Repeat("v", 257)}}, "more than 256"},
		{"nothing", tagger.Names{}, "", nil, "no tags configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tagger.NewPolicy(tt.names, tt.prefix, tt.static)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestPlanEvidence: CreatedByEvidence says where the tags came from; a key
// keeps the record it carries (the event, CloudTrail's history or the
// trail's archive are one record of the same call), and a key tagged from
// its creation date alone gets the record's value once one is found.
func TestPlanEvidence(t *testing.T) {
	p := mustPolicy(t, tagger.DefaultNames(), "", nil)
	user := events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:user/alice"}
	for _, tt := range []struct {
		name, evidence, carried, want string
		write                         bool
	}{
		{"the event", "", "", "event", true},
		{"the history", "history", "", "history", true},
		{"the trail archive", "trail-archive", "", "trail-archive", true},
		{"a repair from the history keeps the event's", "history", "event", "event", false},
		{"a redelivered event keeps the history's", "", "history", "history", false},
		{"a record replaces the creation date alone", "history", "creation-date-only", "history", true},
		{"a forged value is replaced", "", "trust-me", "event", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := keyEvent(user, func(ev *events.KeyEvent) { ev.Evidence = tt.evidence })
			var current []tagger.Tag
			if tt.carried != "" {
				current = []tagger.Tag{{Key: "CreatedByEvidence", Value: tt.carried}}
			}
			got := p.Plan(ev, current)
			if v, _ := valueOf(got.Tags, "CreatedByEvidence"); v != tt.want {
				t.Errorf("CreatedByEvidence: got %q, want %q", v, tt.want)
			}
			if _, written := valueOf(got.Write, "CreatedByEvidence"); written != tt.write {
				t.Errorf("written: got %v, want %v", written, tt.write)
			}
		})
	}
	off := tagger.DefaultNames()
	off.Evidence = ""
	if got := mustPolicy(t, off, "", nil).Plan(keyEvent(user), nil); slices.ContainsFunc(got.Tags, func(t tagger.Tag) bool { return t.Key == "CreatedByEvidence" }) {
		t.Errorf("switched off: got %v, want no CreatedByEvidence", got.Tags)
	}
}
