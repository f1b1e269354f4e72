package query_test

import (
	"bufio"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/lanectl/lanectl/query"
)

// viewHelperEnv makes the test binary a process that opens a read-only view
// of the store named by the variable, says so on stdout, and waits to be
// killed.
const viewHelperEnv = "LANECTL_TEST_STORE_VIEW_OF"

func TestMain(m *testing.M) {
	if dir := os.Getenv(viewHelperEnv); dir != "" {
		holdStoreView(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

func holdStoreView(dir string) {
	view, err := query.OpenStoreReadOnly(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println("open")
	// Stdin stays open until the test kills this process.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = view.Close()
	os.Exit(0)
}
