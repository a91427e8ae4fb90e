package heartbeat

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// memory reads MemTotal from /proc/meminfo.
func memory() resource.Quantity {
	f, err := os.Open("/proc/meminfo")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64); err == nil {
					return *resource.NewQuantity(kb*1024, resource.BinarySI)
				}
			}
		}
	}
	return *resource.NewQuantity(0, resource.BinarySI)
}
