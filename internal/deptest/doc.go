// Package deptest holds the test that keeps the house's layering: terminal
// packages link no server-side code and only the dependencies a terminal
// needs, and no third-party type appears in any exported API.
package deptest
