package imdb

import (
	"reflect"
	"strings"
	"testing"
)

// join renders sentences as "tok tok | tok tok" for compact expectations.
func join(ss [][]string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = strings.Join(s, " ")
	}
	return strings.Join(parts, " | ")
}

// TestTokenizeEdgeCases pins every rule of domains.md §1.2 on its edge cases.
func TestTokenizeEdgeCases(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"br variants are paragraph breaks", "Good<br />bad<BR>ugly< br/>fine<br/ >end", "good | bad | ugly | fine | end"},
		{"double br gives no empty sentence", "One.<br /><br />Two", "one . | two"},
		{"other tags are spaces", "an <i>odd</i> film<p>really<hr>so<EM>x</EM>", "an odd film really so x"},
		{"pseudo-tags stay text", "ok <grin> < cough >", "ok < grin > < cough >"},
		{"lower-case", "The MOVIE", "the movie"},
		{"inner apostrophes", "Don't, it's Bromwell's rock'n'roll", "don't , it's bromwell's rock'n'roll"},
		{"leading and trailing apostrophes split", "'tis the singers' song", "' tis the singers ' song"},
		{"accented letters and digits are word characters", "Café naïve 1990s ½ señor", "café naïve 1990s ½ señor"},
		{"dot runs become ...", "wait.. what... no....... yes", "wait ... | what ... | no ... | yes"},
		{"repeated punctuation collapses", "wow!!! really??? ok,, -- ((x))", "wow ! | really ? | ok , - ( x )"},
		{"spaced repeats collapse too", "no ! ! ! yes", "no ! | yes"},
		{"mixed punctuation stays", "what?! no", "what ? | ! | no"},
		{"typographic quotes and dashes", "\u201cHi\u201d \u2018it\u2019s\u2019 \u00abx\u00bb a\u2013b c\u2014d e\u0096f g\u0097h it\u00b4s a`b", `" hi " ' it's ' " x " a - b c - d e - f g - h it's a'b`},
		{"ellipsis characters", "so\u2026 then\u0085 more", "so ... | then ... | more"},
		{"NBSP and controls are spaces", "a\u00a0b\u0091c\u00add\x01e", "a b c d e"},
		{"sentence ends", "One. Two! Three? Four... five", "one . | two ! | three ? | four ... | five"},
		{"lone closing quote joins", `He said "go." Then "left."`, `he said " go . | " then " left . "`},
		{"lone closing bracket joins", "(It was bad.)<br />Then", "( it was bad . ) | then"},
		{"lone apostrophe joins", "the 'end.'", "the ' end . '"},
		{"a closer before more text starts the next sentence (flaw)", `Bad.) Good`, `bad . | ) good`},
		{"an opening quote after a stop starts the next sentence", `Bad. "Good" film`, `bad . | " good " film`},
		{"a lone closer joins across a paragraph break", `the end."<br />"<br />x`, `the end . " " | x`},
		{"abbreviations split (known flaw)", "Mr. Smith", "mr . | smith"},
		{"empty", "  <br /> ", ""},
	}
	for _, c := range cases {
		if got := join(Tokenize(c.in)); got != c.want {
			t.Errorf("%s: Tokenize(%q)\n got %q\nwant %q", c.name, c.in, got, c.want)
		}
	}
}

// TestTokenizeIsDeterministicAndCopies: sentences do not alias each other.
func TestTokenizeIsDeterministicAndCopies(t *testing.T) {
	in := "A b. C d! E<br />F"
	a, b := Tokenize(in), Tokenize(in)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two calls differ: %v %v", a, b)
	}
	a[0][0] = "zzz"
	if a[1][0] == "zzz" {
		t.Fatal("sentences share storage")
	}
}
