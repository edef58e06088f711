from imagelift.cli import main

raise SystemExit(main())
