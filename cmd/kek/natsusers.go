package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// NATSPasswordUsers are the NATS users that log in with a password, one per
// role of deploy/nats.conf; each reads it from DIR/nats_<user>.
var NATSPasswordUsers = []string{"setup", "worker", "edge", "operator"}

// NATSNotifierSeed is the file of the MinIO notifier's nkey seed: MinIO
// reads the seed from a file, so no secret sits in its environment.
const NATSNotifierSeed = "nats_notifier.nk"

// NATSUsersConf is the include file of deploy/nats.conf: the users' bcrypt
// password hashes and the notifier's public nkey, as config variables. It
// holds no secret a client could log in with.
const NATSUsersConf = "nats-users.conf"

// createNATSUsers writes a random password for every user of
// NATSPasswordUsers and the notifier's nkey seed into dir (mode 0600; an
// existing file is kept), then rewrites dir/NATSUsersConf from them.
func createNATSUsers(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("nats-users: %w", err)
	}
	var conf bytes.Buffer
	conf.WriteString("# Written by `kek nats-users` from the secret files beside it: bcrypt\n# hashes of the NATS users' passwords and the notifier's public nkey.\n")
	for _, user := range NATSPasswordUsers {
		pw, err := readOrCreate(filepath.Join(dir, "nats_"+user), func() ([]byte, error) {
			b := make([]byte, 24)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			return []byte(hex.EncodeToString(b) + "\n"), nil
		})
		if err != nil {
			return err
		}
		// The passwords are 192 random bits, beyond any guessing whatever
		// the hash's cost; a low cost keeps the server's check of every
		// connection cheap (cost 11 took seconds on a busy server).
		hash, err := bcrypt.GenerateFromPassword(bytes.TrimSpace(pw), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("nats-users: hash the password of %s: %w", user, err)
		}
		fmt.Fprintf(&conf, "%s_PASSWORD: %q\n", strings.ToUpper(user), hash)
	}
	seed, err := readOrCreate(filepath.Join(dir, NATSNotifierSeed), func() ([]byte, error) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		s, err := kp.Seed()
		return append(s, '\n'), err
	})
	if err != nil {
		return err
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return fmt.Errorf("nats-users: %s: %w", NATSNotifierSeed, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("nats-users: %s: %w", NATSNotifierSeed, err)
	}
	fmt.Fprintf(&conf, "NOTIFIER_NKEY: %q\n", pub)
	return writeFile0600(filepath.Join(dir, NATSUsersConf), conf.Bytes())
}

// readOrCreate returns the file's content, first writing create's (mode 0600)
// when there is no file.
func readOrCreate(path string, create func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("nats-users: %w", err)
	}
	if b, err = create(); err != nil {
		return nil, fmt.Errorf("nats-users: %s: %w", path, err)
	}
	return b, writeFile0600(path, b)
}

func writeFile0600(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("nats-users: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return fmt.Errorf("nats-users: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("nats-users: %w", err)
	}
	return nil
}
