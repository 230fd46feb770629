// Package packaging holds the Debian package of the dsrlb daemon and the
// realserver tool: the nfpm configuration, the systemd unit, the default
// configuration and the maintainer scripts, built by scripts/package.sh.
// It has no code; its tests build the package, install it, run the
// installed daemon under the unit's user and capabilities in a namespace
// lab, upgrade and remove it.
package packaging
