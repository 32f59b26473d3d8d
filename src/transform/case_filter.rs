//! The cheap filter in front of the case table: text in scripts without
//! case never reaches the table (the point of the filter), and what it lets
//! through is all that can change.

use super::upper::may_change_case;

#[test]
fn caseless_scripts_and_upper_case_letters_skip_the_case_table() {
    for c in ['中', '한', 'ア', 'ꀀ', 'É', 'Ａ', '1', '€'] {
        assert!(!may_change_case(c), "{c:?} has no other upper case");
    }
    for c in ['é', 'ω', 'ß', 'ǅ', 'ΐ'] {
        assert!(may_change_case(c), "{c:?} changes");
    }
}
