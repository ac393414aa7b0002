package services

import (
	"fmt"
	"strings"
)

// Installed reports whether a server of the given kind could be started here, without starting it: nil, a
// *NotInstalledError naming what is missing (its programs, or under root the user its package creates), or an
// error for an unknown kind. It looks for exactly what Start looks for.
func Installed(kind string) error {
	var err error
	switch kind {
	case KindPostgres:
		_, _, err = findPostgres()
	case KindMariaDB:
		_, _, _, err = findMariaDB()
	case KindRedis:
		_, err = findRedis()
	case KindDynalite:
		_, err = findDynalite()
	default:
		err = unknownKind(kind)
	}
	return err
}

func unknownKind(kind string) error {
	return fmt.Errorf("unknown service %q (want one of %s)", kind, strings.Join(Kinds, ", "))
}
