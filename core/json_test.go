package core

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The rules appendString documents, checked on its output bytes (decoding
// with encoding/json alone cannot tell them apart: it turns invalid bytes
// into U+FFFD itself and reads a raw U+2028 as an escaped one):
//   - '"' and '\\' are escaped with a backslash;
//   - '\n', '\r', '\t' are written \n, \r, \t; every other byte below 0x20
//     is written \u00xx (lower-case hex);
//   - each byte that does not start a valid UTF-8 sequence (as
//     utf8.DecodeRuneInString reads it) is written \ufffd;
//   - U+2028 and U+2029 are written \u2028 and \u2029 (JavaScript readers);
//   - everything else, '<', '&', '>' and 0x7f included, is copied as is.

// checkAppendString reports the first place where got, the encoding of s,
// breaks a rule above, or "" when it follows them all.
func checkAppendString(s string, got []byte) string {
	if !utf8.Valid(got) {
		return "output is not valid UTF-8"
	}
	if len(got) < 2 || got[0] != '"' || got[len(got)-1] != '"' {
		return "output is not quoted"
	}
	out := string(got[1 : len(got)-1])
	expect := func(want string) bool {
		if !strings.HasPrefix(out, want) {
			return false
		}
		out = out[len(want):]
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		var want string
		size := 1
		switch {
		case c == '"' || c == '\\':
			want = `\` + string(c)
		case c == '\n':
			want = `\n`
		case c == '\r':
			want = `\r`
		case c == '\t':
			want = `\t`
		case c < 0x20:
			want = `\u00` + string(hexDigits[c>>4]) + string(hexDigits[c&0xf])
		case c < utf8.RuneSelf:
			want = string(c)
		default:
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				want = `\ufffd`
			case r == '\u2028':
				want = `\u2028`
			case r == '\u2029':
				want = `\u2029`
			default:
				want = s[i : i+size]
			}
		}
		if !expect(want) {
			return "input byte " + strconv.Itoa(i) + " (" + strconv.Quote(s[i:i+size]) + ") is not written " + want +
				"; the output continues " + strconv.Quote(out[:min(len(out), 12)])
		}
		i += size
	}
	if out != "" {
		return "output has extra bytes " + strconv.Quote(out)
	}
	return ""
}

// TestAppendString pins the encoding of each rule with exact bytes, so a
// broken appendString fails plain go test, not only fuzzing.
func TestAppendString(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		got := appendString([]byte("prefix:"), s)
		if string(got) != "prefix:"+want {
			t.Fatalf("unexpected encoding of %s; got %s; want %s", strconv.Quote(s), got[len("prefix:"):], want)
		}
		if msg := checkAppendString(s, got[len("prefix:"):]); msg != "" {
			t.Fatalf("the rule check disagrees with the table for %s: %s", strconv.Quote(s), msg)
		}
	}
	f("", `""`)
	f("plain", `"plain"`)
	f(`quote"back\slash`, `"quote\"back\\slash"`)
	f("\n\r\t", `"\n\r\t"`)
	f("\x00\x01\x08\x0b\x0c\x1f", `"\u0000\u0001\u0008\u000b\u000c\u001f"`)
	f("\x20\x7f<&>/", "\"\x20\x7f<&>/\"")
	f("é中文😀", `"é中文😀"`)
	f("\xff", `"\ufffd"`)
	f("a\xfeb\xffc", `"a\ufffdb\ufffdc"`)
	f("\xe4\xb8", `"\ufffd\ufffd"`)           // truncated three-byte sequence: one U+FFFD per byte
	f("\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`) // an encoded surrogate is invalid UTF-8
	f("\xc0\xaf", `"\ufffd\ufffd"`)           // overlong '/'
	f("\u2028", `"\u2028"`)
	f("\u2029", `"\u2029"`)
	f("x\u2028y\u2029z", `"x\u2028y\u2029z"`)
	f("\u2027\u202a", "\"\u2027\u202a\"") // the neighbours stay literal
	f("\ufffd", "\"\ufffd\"")             // a valid U+FFFD is copied, not escaped
}

// TestCheckAppendStringCatchesBreakage: the rule check rejects encodings
// that break each rule (so the fuzzer below checks something).
func TestCheckAppendStringCatchesBreakage(t *testing.T) {
	f := func(s, bad string) {
		t.Helper()
		if msg := checkAppendString(s, []byte(bad)); msg == "" {
			t.Fatalf("the check accepted %s as the encoding of %s", strconv.Quote(bad), strconv.Quote(s))
		}
	}
	f("\xff", "\"\xff\"")                         // invalid byte copied
	f("\xff", "\"\ufffd\"")                       // raw U+FFFD instead of the escape
	f("\xff", `""`)                               // invalid byte dropped
	f("\u2028", "\"\u2028\"")                     // raw line separator
	f("\u2029", "\"\u2029\"")                     // raw paragraph separator
	f("\x01", "\"\x01\"")                         // raw control character
	f("\x01", `"\u0001\u0001"`)                   // extra bytes
	f("\n", `"\u000a"`)                           // long form where the short one is documented
	f("\x1f", `"\u001F"`)                         // upper-case hex
	f(`"`, `"""`)                                 // unescaped quote
	f(`\`, `"\"`)                                 // unescaped backslash
	f("é", `"\u00e9"`)                            // valid text escaped
	f("a", `a`)                                   // unquoted
	f("a", `"a`)                                  // unterminated
	f("\xe4\xb8", `"\ufffd"`)                     // one U+FFFD for two invalid bytes
	f("<", `"\u003c"`)                            // '<' is copied as is
	f("x", "\"\xed\xa0\x80x\"")                   // invalid UTF-8 in the output
	f("\u2028", `"\u2029"`)                       // wrong escape
	f("\x00", `"\u0000"`[:len(`"\u0000"`)-2]+`"`) // truncated escape
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\x00\x1f\n\r\t", "é中文", "\xff\xfe", "\u2028\u2029", "<&>",
		"\xe4\xb8", "\xed\xa0\x80", "a\u2028\xffb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		if msg := checkAppendString(s, b); msg != "" {
			t.Fatalf("encoding %s as %s breaks a documented rule: %s", strconv.Quote(s), strconv.Quote(string(b)), msg)
		}
		// An extra check: any JSON reader gets s back, invalid bytes as U+FFFD.
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("cannot decode %s encoded as %s: %v", strconv.Quote(s), b, err)
		}
		if want := string([]rune(s)); got != want {
			t.Fatalf("unexpected round trip of %s; got %q; want %q", strconv.Quote(s), got, want)
		}
	})
}
