package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// outputAnnotation marks the commands that print -o json and -o yaml; the
// others refuse them before doing anything.
const outputAnnotation = "weft.output"

// structuredOutput is the Annotations of a command that prints JSON and YAML.
var structuredOutput = map[string]string{outputAnnotation: "json,yaml"}

// checkOutput refuses -o json|yaml for a command that only prints text,
// naming the commands that do print it. A command with its own --output
// flag (weft observe) checks its own.
func checkOutput(cmd *cobra.Command, output string) error {
	if output == formatTable || cmd.Annotations[outputAnnotation] != "" || cmd.LocalNonPersistentFlags().Lookup("output") != nil {
		return nil
	}
	return fmt.Errorf("%s prints no %s: leave out -o %s (commands that print JSON and YAML: %s)",
		cmd.CommandPath(), strings.ToUpper(output), output, strings.Join(structuredCommands(cmd.Root()), ", "))
}

// structuredCommands lists the paths of the commands marked structuredOutput.
func structuredCommands(root *cobra.Command) []string {
	var out []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Annotations[outputAnnotation] != "" {
			out = append(out, strings.TrimPrefix(c.CommandPath(), root.Name()+" "))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	slices.Sort(out)
	return out
}
