import type { Linter } from 'eslint';

/** The import boundaries of src/ (eslint.boundaries.js). */
export declare const boundaries: Linter.Config[];
