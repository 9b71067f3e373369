//! sheping (社评): the telephone satisfaction survey behind the social evaluation (社会评价)
//! of government units.

pub mod domain;
