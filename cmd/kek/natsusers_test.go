package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

func TestNATSUsers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"nats-users", dir}, &out); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v (want mode 0600)", name, fi.Mode(), err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return b
	}
	conf := read(NATSUsersConf)
	for _, user := range NATSPasswordUsers {
		pw := bytes.TrimSpace(read("nats_" + user))
		if bytes.Contains(conf, pw) || bytes.Contains(out.Bytes(), pw) {
			t.Fatalf("the password of %s is in the server's include or the output", user)
		}
		m := regexp.MustCompile(strings.ToUpper(user) + `_PASSWORD: "(\$2a\$[^"]+)"`).FindSubmatch(conf)
		if m == nil || bcrypt.CompareHashAndPassword(m[1], pw) != nil {
			t.Fatalf("%s: no matching bcrypt hash in\n%s", user, conf)
		}
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(read(NATSNotifierSeed)))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	if !bytes.Contains(conf, []byte(`NOTIFIER_NKEY: "`+pub+`"`)) || bytes.Contains(conf, bytes.TrimSpace(read(NATSNotifierSeed))) {
		t.Fatalf("include lacks the notifier's public key or holds its seed:\n%s", conf)
	}
	// A second run keeps the secrets.
	before := read("nats_worker")
	if err := run(t.Context(), []string{"nats-users", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, read("nats_worker")) {
		t.Fatal("a second run replaced a password")
	}
}
