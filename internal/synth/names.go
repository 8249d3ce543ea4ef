package synth

import (
	"hash/fnv"

	"github.com/setlist/setlist"
)

// Readable display names for data sets whose users are opaque ids (the
// committed sample's are 32 hex digits), so a demo's search box and headings
// read like a product. Names are made up from two short lists; nothing here
// is anyone's real name.
var (
	firstNames = [...]string{
		"Ada", "Aiko", "Alba", "Amara", "Anika", "Aria", "Bea", "Bruno", "Carla", "Chen",
		"Dario", "Dina", "Elif", "Emil", "Esme", "Farah", "Felix", "Gita", "Hana", "Hugo",
		"Ines", "Ivan", "Jae", "Jonas", "Kai", "Kenji", "Lara", "Leon", "Lina", "Luca",
		"Maya", "Mateo", "Mira", "Nadia", "Nico", "Noor", "Oskar", "Priya", "Quinn", "Rafa",
		"Rosa", "Sami", "Sara", "Soren", "Tariq", "Thea", "Uma", "Vera", "Wren", "Yara",
		"Yusuf", "Zara", "Zoe", "Omar", "Lea", "Iris", "Ravi", "Tomas", "Ayla", "Malik",
	}
	lastNames = [...]string{
		"Abe", "Adeyemi", "Alves", "Bauer", "Berg", "Costa", "Dahl", "Diaz", "Eriksen", "Fischer",
		"Garcia", "Haddad", "Hansen", "Ito", "Jensen", "Kaur", "Kim", "Kowalski", "Larsen", "Lopez",
		"Mendes", "Moreau", "Nakamura", "Novak", "Okafor", "Olsen", "Park", "Patel", "Petrov", "Quist",
		"Rossi", "Sato", "Schmidt", "Silva", "Singh", "Tanaka", "Torres", "Umarov", "Varga", "Vogel",
		"Wagner", "Weber", "Xu", "Yilmaz", "Young", "Zhang", "Ziegler", "Brooks", "Castro", "Duarte",
		"Ferreira", "Greco", "Holm", "Ivanova", "Kane", "Lindqvist", "Mori", "Nilsen", "Ortiz", "Reyes",
	}
)

// Namer returns a deterministic display-name generator: the same ids in the
// same order always get the same names, and no two ids get the same name
// (a name already given moves on to the next in a fixed probe order) until
// all 3,600 first-last pairs are used; beyond that names repeat.
func Namer() func(id setlist.UserID) string {
	used := map[int]bool{}
	n := len(firstNames) * len(lastNames)
	return func(id setlist.UserID) string {
		h := fnv.New64a()
		_, _ = h.Write([]byte(id))
		start := int(h.Sum64() % uint64(n))
		k := start
		if len(used) < n {
			for used[k] {
				k = (k + 1) % n
			}
		}
		used[k] = true
		return firstNames[k%len(firstNames)] + " " + lastNames[k/len(firstNames)]
	}
}
