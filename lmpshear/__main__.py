import sys

from lmpshear.cli import main

sys.exit(main())
