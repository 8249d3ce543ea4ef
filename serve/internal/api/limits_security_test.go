package api

import (
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"10.0.0.0/8, 127.0.0.1", []string{"10.0.0.0/8", "127.0.0.1/32"}, true},
		{"::1,fd00::/8", []string{"::1/128", "fd00::/8"}, true},
		{"10.0.0.1/8", []string{"10.0.0.0/8"}, true},
		{"proxy.internal", nil, false},
		{"10.0.0.0/33", nil, false},
	} {
		got, err := ParseTrustedProxies([]string{c.in})
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if c.ok && len(s) != len(c.want) {
			t.Errorf("%q: %v, want %v", c.in, s, c.want)
			continue
		}
		for i := range s {
			if s[i] != c.want[i] {
				t.Errorf("%q: %v, want %v", c.in, s, c.want)
			}
		}
	}
}
