package notifier

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseResourceLists_FlattensNestedListsWithNames(t *testing.T) {
	body := `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
 <list name="front"><entry uri="sip:1001@hub.test"><display-name> Reception </display-name></entry>
  <list><entry uri="sip:1002@hub.test"/></list></list>
 <list><entry uri="sip:1003@hub.test"><display-name>Sales &amp; Co</display-name></entry></list>
</resource-lists>`
	entries, names, err := parseResourceLists([]byte(body), 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sip:1001@hub.test", "sip:1002@hub.test", "sip:1003@hub.test"}; !reflect.DeepEqual(entries, want) {
		t.Fatalf("entries %v, want %v", entries, want)
	}
	if names["sip:1001@hub.test"] != "Reception" || names["sip:1003@hub.test"] != "Sales & Co" || len(names) != 2 {
		t.Fatalf("names %v", names)
	}
}

func TestParseResourceLists_Refusals(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"not XML", "1001, 1002"},
		{"unclosed", "<resource-lists><list>"},
		{"other root", `<list><entry uri="sip:1@h"/></list>`},
		{"entry without uri", `<resource-lists><list><entry/></list></resource-lists>`},
		{"too deep", "<resource-lists>" + strings.Repeat("<list>", 40) + strings.Repeat("</list>", 40) + "</resource-lists>"},
		{"too many", `<resource-lists><list><entry uri="sip:1@h"/><entry uri="sip:2@h"/><entry uri="sip:3@h"/></list></resource-lists>`},
	} {
		if _, _, err := parseResourceLists([]byte(tc.body), 2); err == nil {
			t.Errorf("%s: parsed", tc.name)
		}
	}
}

func TestSplitMember_UserPartsAndSIPURIs(t *testing.T) {
	for _, tc := range []struct {
		in, user, host string
		ok             bool
	}{
		{"1001", "1001", "hub.test", true},
		{"sip:1002@other.test", "1002", "other.test", true},
		{"sips:1003@hub.test", "1003", "hub.test", true},
		{"tel:+15551234", "", "", false},
		{"a b", "", "", false},
		{"1001@hub.test", "", "", false},
		{"", "", "", false},
	} {
		user, host, ok := splitMember(tc.in, "hub.test")
		if user != tc.user || host != tc.host || ok != tc.ok {
			t.Errorf("%q: %q %q %v, want %q %q %v", tc.in, user, host, ok, tc.user, tc.host, tc.ok)
		}
	}
}
