package pii

import (
	"slices"
	"strings"
	"testing"
)

func kinds(fs []Finding, s string) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Kind)+"="+s[f.Start:f.End])
	}
	return out
}

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"email", "write to ada.lovelace+ml@example.co.uk today", []string{"email=ada.lovelace+ml@example.co.uk"}},
		{"not an email", "user@localhost and a@b", nil},
		{"visa spaced", "card 4242 4242 4242 4242 exp 12/29", []string{"card=4242 4242 4242 4242"}},
		{"amex dashed", "3782-822463-10005", []string{"card=3782-822463-10005"}},
		{"luhn fails", "order 4242424242424241 shipped", nil},
		{"too short for a card", "id 424242424242", nil},
		{"ssn", "SSN 123-45-6789.", []string{"ssn=123-45-6789"}},
		{"ssn invalid area", "000-12-3456 666-12-3456 912-12-3456", nil},
		{"ssn invalid group and serial", "123-00-4567 123-45-0000", nil},
		{"nino", "NI number AB 12 34 56 C", []string{"nino=AB 12 34 56 C"}},
		{"nino first letter", "QQ123456C", nil},
		{"nino compact", "AB123456D", []string{"nino=AB123456D"}},
		{"nino bad prefix", "GB123456A", nil},
		{"ipv4", "from 192.168.1.20, to 10.0.0.1", []string{"ipv4=192.168.1.20", "ipv4=10.0.0.1"}},
		{"not ipv4", "999.1.1.1 and 01.2.3.4", nil},
		{"ipv6", "peer 2001:db8::8a2e:370:7334 up", []string{"ipv6=2001:db8::8a2e:370:7334"}},
		{"a time is not ipv6", "at 12:30:45 UTC", nil},
		{"e164", "call +442079460958 now", []string{"phone=+442079460958"}},
		{"us phone", "(555) 123-4567", []string{"phone=(555) 123-4567"}},
		{"intl phone", "+1 415-555-2671", []string{"phone=+1 415-555-2671"}},
		{"a date is not a phone", "on 2026-12-03 at noon", nil},
		{"inside a word", "X4242424242424242Y", nil},
		{"several", "ada@example.com paid with 4242424242424242 from 8.8.8.8",
			[]string{"email=ada@example.com", "card=4242424242424242", "ipv4=8.8.8.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kinds(Default.Scan(tc.in), tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("Scan(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ada@example.com paid 4242 4242 4242 4242", "[EMAIL] paid [CARD ••••4242]"},
		{"ssn 123-45-6789 ip ::1", "ssn [SSN] ip [IPV6]"},
		{"nothing here", "nothing here"},
		{"+442079460958", "[PHONE]"},
	} {
		if got := Default.Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	sc, err := New(Config{Kinds: []Kind{Email}, Custom: map[string]string{"employee_id": `EMP-\d{6}`}})
	if err != nil {
		t.Fatal(err)
	}
	in := "ada@example.com EMP-123456 4242424242424242"
	if got, want := kinds(sc.Scan(in), in), []string{"email=ada@example.com", "employee_id=EMP-123456"}; !slices.Equal(got, want) {
		t.Errorf("Scan = %q, want %q (cards off)", got, want)
	}
	if got := sc.Mask(in); got != "[EMAIL] [EMPLOYEE_ID] 4242424242424242" {
		t.Errorf("Mask = %q", got)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Kinds: []Kind{"passport"}}, `unknown PII kind "passport"`},
		{Config{Custom: map[string]string{"x": "("}}, `custom PII detector "x"`},
		{Config{Custom: map[string]string{"email": "x"}}, `the name must be new`},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestColumnReport(t *testing.T) {
	r := NewColumnReport(nil)
	r.AddRow(map[string]string{"comment": "mail me at bo@example.org", "amount": "12.5"})
	r.AddRow(map[string]string{"comment": "call +442079460958 or bo@example.org", "amount": "3"})
	r.AddRow(map[string]string{"comment": "fine", "amount": ""})
	if r.Rows != 3 || r.Values["comment"] != 2 || r.Columns["comment"][Email] != 2 || r.Columns["comment"][Phone] != 1 {
		t.Errorf("report %+v", r)
	}
	if _, ok := r.Columns["amount"]; ok {
		t.Errorf("amount has findings: %+v", r.Columns["amount"])
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{"ada@example.com 4242 4242 4242 4242", "123-45-6789", "2001:db8::1 10.0.0.1", "+442079460958", "QQ123456C", ""} {
		f.Add(s)
	}
	full := *Default
	full.noPrefilter = true
	f.Fuzz(func(t *testing.T, s string) {
		fs := Default.Scan(s)
		// The prefilters only skip expressions that could not match.
		if want := full.Scan(s); !slices.Equal(fs, want) {
			t.Fatalf("with prefilters %v, without %v, in %q", fs, want, s)
		}
		last := 0
		for _, x := range fs {
			if x.Start < last || x.End <= x.Start || x.End > len(s) {
				t.Fatalf("finding %v out of order or bounds in %q (%v)", x, s, fs)
			}
			last = x.End
		}
		m := Default.Mask(s)
		if len(fs) > 0 && m == s {
			t.Fatalf("Mask left %q unchanged with findings %v", s, fs)
		}
	})
}
