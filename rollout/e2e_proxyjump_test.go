package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/rollout/sshtest"
)

// lanectl advance reaches the replicas through a bastion named by the ssh
// config file's ProxyJump, and the bastion's own log shows it forwarded the
// connections.
func TestE2EAdvanceThroughBastion(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	bastion := sshtest.StartWith(t, sshtest.Options{LogLevel: "DEBUG1"})
	// The plan's addresses are 127.0.0.1:port; a Host block for that
	// address routes them through the bastion, whose own block does not
	// match it.
	conf := hostBlock("bastion", bastion, "IdentityFile "+bastion.IdentityFile) +
		fmt.Sprintf("Host %s\n  ProxyJump bastion\n", r.ssh.Host)
	if err := os.WriteFile(filepath.Join(r.dir, "no-ssh-config"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	trusted, err := os.ReadFile(bastion.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(r.ssh.KnownHosts, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(trusted); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	res := r.advance(ctx, 0, "enabled n1")
	if want := "n1: enable over ssh " + r.ssh.SSHAddress() + " via " + bastion.User + "@" + bastion.Addr; !strings.Contains(res.stdout, want) {
		t.Errorf("action log lacks %q:\n%v", want, res)
	}
	want := fmt.Sprintf("server_request_direct_tcpip: originator 0.0.0.0 port 0, target 127.0.0.1 port %s", r.ssh.Port)
	promtest.Eventually(t, 5*time.Second, "the bastion to log forwarding to the replicas' sshd", func() bool {
		return strings.Contains(bastion.Logs(), want)
	})
	r.requireFlags(ctx, true, false, false)

	// Without the bastion there is no route: exit 3, and nothing changes.
	bastion.Stop()
	before := r.journal()
	res = r.lanectl(ctx, "rollback", "--replica", "n1")
	if res.code != 3 || !strings.Contains(res.stderr, "jump host bastion, hop 1 of 1 to replica n1") {
		t.Errorf("rollback with the bastion down: %v\nwant exit 3 naming the jump host", res)
	}
	if after := r.journal(); string(after) != string(before) {
		t.Errorf("journal changed with the bastion down:\nbefore %s\nafter  %s", before, after)
	}
	r.requireFlags(ctx, true, false, false)
}
